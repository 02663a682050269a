"""cffi ABI-mode binding to the subset of GnuTLS 3.7 that the DTLS/TLS engine uses.

ABI mode (``dlopen``) needs no compiler at install time, so the constants and struct layouts
below are declared by hand from the GnuTLS 3.7 headers; ``tests/security/test_gnutls_ffi.py``
checks them against the installed headers whenever a C compiler is around.

Enum-typed parameters are declared as ``int``/``unsigned int``: on every ABI GnuTLS ships for,
its enums are int-sized, and plain ints keep the declarations short.
"""

from __future__ import annotations

import threading
from typing import Any

from cffi import FFI  # type: ignore[import-untyped]  # cffi ships no type stubs

LIBRARY_NAME = "libgnutls.so.30"

CDEF = r"""
typedef struct gnutls_session_int *gnutls_session_t;
typedef struct gnutls_priority_st *gnutls_priority_t;
typedef struct gnutls_psk_server_credentials_st *gnutls_psk_server_credentials_t;
typedef struct gnutls_psk_client_credentials_st *gnutls_psk_client_credentials_t;
typedef struct gnutls_certificate_credentials_st *gnutls_certificate_credentials_t;
typedef struct gnutls_x509_crt_int *gnutls_x509_crt_t;
typedef struct gnutls_x509_privkey_int *gnutls_x509_privkey_t;
typedef struct gnutls_x509_trust_list_st *gnutls_x509_trust_list_t;
typedef struct gnutls_pubkey_st *gnutls_pubkey_t;
typedef struct gnutls_privkey_st *gnutls_privkey_t;
typedef void *gnutls_transport_ptr_t;

typedef struct {
    unsigned char *data;
    unsigned int size;
} gnutls_datum_t;

typedef struct {
    unsigned int record_seq;
    unsigned int hsk_read_seq;
    unsigned int hsk_write_seq;
} gnutls_dtls_prestate_st;

typedef struct {
    int type;
    unsigned char *data;
    unsigned int size;
} gnutls_typed_vdata_st;

typedef ssize_t (*gnutls_push_func)(gnutls_transport_ptr_t, const void *, size_t);
typedef ssize_t (*gnutls_pull_func)(gnutls_transport_ptr_t, void *, size_t);
typedef int (*gnutls_pull_timeout_func)(gnutls_transport_ptr_t, unsigned int ms);
typedef int gnutls_psk_server_credentials_function2(gnutls_session_t,
                                                    const gnutls_datum_t *username,
                                                    gnutls_datum_t *key);
typedef int gnutls_certificate_verify_function(gnutls_session_t);

extern void *(*gnutls_malloc)(size_t);
extern void (*gnutls_free)(void *);

const char *gnutls_check_version(const char *req_version);
const char *gnutls_strerror(int error);
int gnutls_error_is_fatal(int error);
const char *gnutls_alert_get_name(int alert);
int gnutls_alert_get(gnutls_session_t session);
int gnutls_alert_send(gnutls_session_t session, int level, int desc);
int gnutls_alert_send_appropriate(gnutls_session_t session, int err);
int gnutls_auth_get_type(gnutls_session_t session);
unsigned int gnutls_record_get_discarded(gnutls_session_t session);

int gnutls_init(gnutls_session_t *session, unsigned int flags);
void gnutls_deinit(gnutls_session_t session);
int gnutls_priority_init(gnutls_priority_t *priority_cache, const char *priorities,
                         const char **err_pos);
void gnutls_priority_deinit(gnutls_priority_t priority_cache);
int gnutls_priority_set(gnutls_session_t session, gnutls_priority_t priority);
int gnutls_credentials_set(gnutls_session_t session, int type, void *cred);
void gnutls_session_set_ptr(gnutls_session_t session, void *ptr);
void *gnutls_session_get_ptr(gnutls_session_t session);
void gnutls_handshake_set_timeout(gnutls_session_t session, unsigned int ms);

void gnutls_transport_set_ptr(gnutls_session_t session, gnutls_transport_ptr_t ptr);
void gnutls_transport_set_push_function(gnutls_session_t session, gnutls_push_func push_func);
void gnutls_transport_set_pull_function(gnutls_session_t session, gnutls_pull_func pull_func);
void gnutls_transport_set_pull_timeout_function(gnutls_session_t session,
                                                gnutls_pull_timeout_func func);
void gnutls_transport_set_errno(gnutls_session_t session, int err);

int gnutls_handshake(gnutls_session_t session);
ssize_t gnutls_record_send(gnutls_session_t session, const void *data, size_t data_size);
ssize_t gnutls_record_recv(gnutls_session_t session, void *data, size_t data_size);
size_t gnutls_record_check_pending(gnutls_session_t session);
int gnutls_bye(gnutls_session_t session, int how);
const char *gnutls_ciphersuite_get(gnutls_session_t session);
int gnutls_session_is_resumed(gnutls_session_t session);
int gnutls_session_get_data2(gnutls_session_t session, gnutls_datum_t *data);
int gnutls_session_set_data(gnutls_session_t session, const void *session_data,
                            size_t session_data_size);
int gnutls_session_ticket_key_generate(gnutls_datum_t *key);
int gnutls_session_ticket_enable_server(gnutls_session_t session, const gnutls_datum_t *key);
int gnutls_server_name_set(gnutls_session_t session, int type, const void *name,
                           size_t name_length);
int gnutls_alpn_set_protocols(gnutls_session_t session, const gnutls_datum_t *protocols,
                              unsigned protocols_size, unsigned flags);
int gnutls_alpn_get_selected_protocol(gnutls_session_t session, gnutls_datum_t *protocol);

void gnutls_dtls_set_timeouts(gnutls_session_t session, unsigned int retrans_timeout,
                              unsigned int total_timeout);
void gnutls_dtls_set_mtu(gnutls_session_t session, unsigned int mtu);
unsigned int gnutls_dtls_get_data_mtu(gnutls_session_t session);
unsigned int gnutls_dtls_get_timeout(gnutls_session_t session);
int gnutls_dtls_cookie_send(gnutls_datum_t *key, void *client_data, size_t client_data_size,
                            gnutls_dtls_prestate_st *prestate, gnutls_transport_ptr_t ptr,
                            gnutls_push_func push_func);
int gnutls_dtls_cookie_verify(gnutls_datum_t *key, void *client_data, size_t client_data_size,
                              void *_msg, size_t msg_size, gnutls_dtls_prestate_st *prestate);
void gnutls_dtls_prestate_set(gnutls_session_t session, gnutls_dtls_prestate_st *prestate);

int gnutls_psk_allocate_server_credentials(gnutls_psk_server_credentials_t *sc);
void gnutls_psk_free_server_credentials(gnutls_psk_server_credentials_t sc);
int gnutls_psk_set_server_credentials_hint(gnutls_psk_server_credentials_t res,
                                           const char *hint);
void gnutls_psk_set_server_credentials_function2(gnutls_psk_server_credentials_t cred,
    gnutls_psk_server_credentials_function2 *func);
int gnutls_psk_server_get_username2(gnutls_session_t session, gnutls_datum_t *out);
int gnutls_psk_allocate_client_credentials(gnutls_psk_client_credentials_t *sc);
void gnutls_psk_free_client_credentials(gnutls_psk_client_credentials_t sc);
int gnutls_psk_set_client_credentials2(gnutls_psk_client_credentials_t res,
                                       const gnutls_datum_t *username,
                                       const gnutls_datum_t *key, int flags);

int gnutls_certificate_allocate_credentials(gnutls_certificate_credentials_t *res);
void gnutls_certificate_free_credentials(gnutls_certificate_credentials_t sc);
int gnutls_certificate_set_x509_key_mem2(gnutls_certificate_credentials_t res,
                                         const gnutls_datum_t *cert,
                                         const gnutls_datum_t *key, int type,
                                         const char *pass, unsigned int flags);
int gnutls_certificate_set_x509_trust_mem(gnutls_certificate_credentials_t res,
                                          const gnutls_datum_t *ca, int type);
int gnutls_certificate_set_rawpk_key_mem(gnutls_certificate_credentials_t cred,
                                         const gnutls_datum_t *spki,
                                         const gnutls_datum_t *pkey, int format,
                                         const char *pass, unsigned int key_usage,
                                         const char **names, unsigned int names_length,
                                         unsigned int flags);
void gnutls_certificate_set_verify_function(gnutls_certificate_credentials_t cred,
                                            gnutls_certificate_verify_function *func);
void gnutls_certificate_server_set_request(gnutls_session_t session, int req);
const gnutls_datum_t *gnutls_certificate_get_peers(gnutls_session_t session,
                                                   unsigned int *list_size);
int gnutls_certificate_type_get2(gnutls_session_t session, int target);

int gnutls_x509_crt_init(gnutls_x509_crt_t *cert);
void gnutls_x509_crt_deinit(gnutls_x509_crt_t cert);
int gnutls_x509_crt_import(gnutls_x509_crt_t cert, const gnutls_datum_t *data, int format);
int gnutls_x509_crt_list_import2(gnutls_x509_crt_t **certs, unsigned int *size,
                                 const gnutls_datum_t *data, int format, unsigned int flags);
int gnutls_x509_crt_export2(gnutls_x509_crt_t cert, int format, gnutls_datum_t *out);
int gnutls_x509_crt_get_dn_by_oid(gnutls_x509_crt_t cert, const char *oid, unsigned indx,
                                  unsigned int raw_flag, void *buf, size_t *buf_size);
int gnutls_x509_crt_get_dn3(gnutls_x509_crt_t cert, gnutls_datum_t *dn, unsigned flags);
int gnutls_x509_crt_get_subject_alt_name2(gnutls_x509_crt_t cert, unsigned int seq,
                                          void *san, size_t *san_size,
                                          unsigned int *san_type, unsigned int *critical);
int gnutls_x509_crt_get_basic_constraints(gnutls_x509_crt_t cert, unsigned int *critical,
                                          unsigned int *ca, int *pathlen);
unsigned gnutls_x509_crt_check_hostname2(gnutls_x509_crt_t cert, const char *hostname,
                                         unsigned int flags);

int gnutls_x509_trust_list_init(gnutls_x509_trust_list_t *list, unsigned int size);
void gnutls_x509_trust_list_deinit(gnutls_x509_trust_list_t list, unsigned int all);
int gnutls_x509_trust_list_add_trust_mem(gnutls_x509_trust_list_t list,
                                         const gnutls_datum_t *cas,
                                         const gnutls_datum_t *crls, int type,
                                         unsigned int tl_flags, unsigned int tl_vflags);
int gnutls_x509_trust_list_add_system_trust(gnutls_x509_trust_list_t list,
                                            unsigned int tl_flags, unsigned int tl_vflags);
int gnutls_x509_trust_list_verify_crt2(gnutls_x509_trust_list_t list,
                                       gnutls_x509_crt_t *cert_list,
                                       unsigned int cert_list_size,
                                       gnutls_typed_vdata_st *data, unsigned int elements,
                                       unsigned int flags, unsigned int *voutput,
                                       void *func);
int gnutls_certificate_verification_status_print(unsigned int status, int type,
                                                 gnutls_datum_t *out, unsigned int flags);

int gnutls_x509_privkey_init(gnutls_x509_privkey_t *key);
void gnutls_x509_privkey_deinit(gnutls_x509_privkey_t key);
int gnutls_x509_privkey_generate(gnutls_x509_privkey_t key, int algo, unsigned int bits,
                                 unsigned int flags);
int gnutls_x509_privkey_export2(gnutls_x509_privkey_t key, int format, gnutls_datum_t *out);
int gnutls_privkey_init(gnutls_privkey_t *key);
void gnutls_privkey_deinit(gnutls_privkey_t key);
int gnutls_privkey_import_x509_raw(gnutls_privkey_t pkey, const gnutls_datum_t *data,
                                   int format, const char *password, unsigned int flags);
int gnutls_pubkey_init(gnutls_pubkey_t *key);
void gnutls_pubkey_deinit(gnutls_pubkey_t key);
int gnutls_pubkey_import(gnutls_pubkey_t key, const gnutls_datum_t *data, int format);
int gnutls_pubkey_import_privkey(gnutls_pubkey_t key, gnutls_privkey_t pkey,
                                 unsigned int usage, unsigned int flags);
int gnutls_pubkey_import_x509(gnutls_pubkey_t key, gnutls_x509_crt_t crt, unsigned int flags);
int gnutls_pubkey_export2(gnutls_pubkey_t key, int format, gnutls_datum_t *out);
"""

# -- init flags (gnutls_init_flags_t) ---------------------------------------------------
GNUTLS_SERVER = 1
GNUTLS_CLIENT = 1 << 1
GNUTLS_DATAGRAM = 1 << 2
GNUTLS_NONBLOCK = 1 << 3
GNUTLS_NO_SIGNAL = 1 << 6
GNUTLS_NO_TICKETS = 1 << 10
GNUTLS_ENABLE_RAWPK = 1 << 18

# -- error codes ------------------------------------------------------------------------
GNUTLS_E_SUCCESS = 0
GNUTLS_E_LARGE_PACKET = -7
GNUTLS_E_UNEXPECTED_PACKET_LENGTH = -9
GNUTLS_E_FATAL_ALERT_RECEIVED = -12
GNUTLS_E_UNEXPECTED_PACKET = -15
GNUTLS_E_WARNING_ALERT_RECEIVED = -16
GNUTLS_E_DECRYPTION_FAILED = -24
GNUTLS_E_AGAIN = -28
GNUTLS_E_INSUFFICIENT_CREDENTIALS = -32
GNUTLS_E_REHANDSHAKE = -37
GNUTLS_E_GOT_APPLICATION_DATA = -38
GNUTLS_E_CERTIFICATE_ERROR = -43
GNUTLS_E_SHORT_MEMORY_BUFFER = -51
GNUTLS_E_INTERRUPTED = -52
GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE = -56
GNUTLS_E_PREMATURE_TERMINATION = -110
GNUTLS_E_TIMEDOUT = -319
GNUTLS_E_SESSION_EOF = -328
GNUTLS_E_NO_APPLICATION_PROTOCOL = -344
GNUTLS_E_CERTIFICATE_VERIFICATION_ERROR = -348
GNUTLS_E_RECORD_OVERFLOW = -417

# -- assorted enums ---------------------------------------------------------------------
GNUTLS_CRD_CERTIFICATE = 1
GNUTLS_CRD_PSK = 4
GNUTLS_X509_FMT_DER = 0
GNUTLS_X509_FMT_PEM = 1
GNUTLS_CERT_REQUEST = 1
GNUTLS_CERT_REQUIRE = 2
GNUTLS_SHUT_RDWR = 0
GNUTLS_SHUT_WR = 1
GNUTLS_CRT_X509 = 1
GNUTLS_CRT_RAWPK = 3
GNUTLS_CTYPE_PEERS = 3
GNUTLS_PSK_KEY_RAW = 0
GNUTLS_NAME_DNS = 1
GNUTLS_ALPN_MANDATORY = 1
GNUTLS_ALPN_SERVER_PRECEDENCE = 1 << 1
GNUTLS_PK_ECDSA = 4
GNUTLS_ECC_CURVE_SECP256R1 = 2
GNUTLS_KEY_DIGITAL_SIGNATURE = 128
GNUTLS_SAN_DNSNAME = 1
GNUTLS_SAN_URI = 3
GNUTLS_SAN_IPADDRESS = 4
GNUTLS_DT_DNS_HOSTNAME = 1
GNUTLS_DT_KEY_PURPOSE_OID = 2
GNUTLS_CRT_PRINT_ONELINE = 1
GNUTLS_TL_NO_DUPLICATES = 1 << 2
GNUTLS_X509_CRT_LIST_FAIL_IF_UNSORTED = 1 << 1
GNUTLS_X509_CRT_LIST_SORT = 1 << 2
GNUTLS_AL_FATAL = 2
GNUTLS_A_CLOSE_NOTIFY = 0
GNUTLS_A_ACCESS_DENIED = 49
GNUTLS_A_DECRYPT_ERROR = 51
GNUTLS_A_UNKNOWN_PSK_IDENTITY = 115
GNUTLS_A_NO_APPLICATION_PROTOCOL = 120

GNUTLS_OID_X520_COMMON_NAME = b"2.5.4.3"
GNUTLS_KP_TLS_WWW_SERVER = b"1.3.6.1.5.5.7.3.1"
GNUTLS_KP_TLS_WWW_CLIENT = b"1.3.6.1.5.5.7.3.2"


def gnutls_curve_to_bits(curve: int) -> int:
    """The header macro GNUTLS_CURVE_TO_BITS: a curve passed where a bit count goes."""
    return (1 << 31) | curve


ffi: Any = FFI()
ffi.cdef(CDEF)


class GnuTLSUnavailable(ImportError):
    """libgnutls.so.30 could not be loaded."""


_lib: Any = None
_lib_lock = threading.RLock()


def lib() -> Any:
    """The loaded GnuTLS library (loaded on first use, then cached)."""
    global _lib
    if _lib is None:
        with _lib_lock:
            if _lib is None:
                try:
                    loaded = ffi.dlopen(LIBRARY_NAME)
                except OSError as exc:
                    raise GnuTLSUnavailable(
                        f"aiolwm2m.security needs {LIBRARY_NAME} (GnuTLS >= 3.6.6): "
                        f"install it with 'apt-get install libgnutls30' ({exc})"
                    ) from exc
                if loaded.gnutls_check_version(b"3.6.6") == ffi.NULL:
                    version = ffi.string(loaded.gnutls_check_version(ffi.NULL)).decode()
                    raise GnuTLSUnavailable(
                        f"GnuTLS {version} is too old: raw public keys need 3.6.6 or newer"
                    )
                # Resolve every declared symbol now. cffi resolves lazily under a
                # non-reentrant lock; a session freed by the garbage collector (its __del__
                # calls gnutls_deinit) in the middle of such a resolution deadlocked.
                for name in dir(loaded):
                    getattr(loaded, name)
                _lib = loaded
    return _lib


def gnutls_version() -> str:
    return str(ffi.string(lib().gnutls_check_version(ffi.NULL)).decode())


def strerror(code: int) -> str:
    return str(ffi.string(lib().gnutls_strerror(code)).decode("utf-8", "replace"))


def take_datum(datum: Any) -> bytes:
    """Copy a datum GnuTLS allocated for us, then release it with gnutls_free."""
    if datum.data == ffi.NULL:
        return b""
    try:
        return bytes(ffi.buffer(datum.data, datum.size))
    finally:
        lib().gnutls_free(datum.data)
        datum.data = ffi.NULL
        datum.size = 0


def gnutls_bytes(data: bytes) -> Any:
    """A copy of ``data`` in memory from gnutls_malloc, for buffers that GnuTLS frees."""
    ptr = lib().gnutls_malloc(max(len(data), 1))
    if ptr == ffi.NULL:
        raise MemoryError("gnutls_malloc failed")
    ffi.memmove(ptr, data, len(data))
    return ptr


def datum(data: bytes) -> tuple[Any, Any]:
    """``(datum, buffer)`` over a private copy of ``data``: keep both alive while GnuTLS reads."""
    buf = ffi.new("unsigned char[]", data)
    d = ffi.new("gnutls_datum_t *")
    d.data = buf
    d.size = len(data)
    return d, buf


def check(rc: int, what: str, error: type[Exception]) -> int:
    """Raise ``error(f"{what}: <GnuTLS message>", rc)`` for a negative return code."""
    if rc < 0:
        raise error(f"{what}: {strerror(rc)}", rc)
    return rc
