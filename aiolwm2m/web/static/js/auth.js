// The API token: where it is kept, and the dialog that asks for it.

const KEY = "aiolwm2m.token";

export function getToken() {
  // sessionStorage holds a token the user chose not to remember; it wins for this tab.
  return sessionStorage.getItem(KEY) ?? localStorage.getItem(KEY);
}

export function setToken(token, remember) {
  forgetToken();
  (remember ? localStorage : sessionStorage).setItem(KEY, token);
}

export function forgetToken() {
  localStorage.removeItem(KEY);
  sessionStorage.removeItem(KEY);
}

/**
 * Accept a token handed over in the URL fragment (`/ui/#token=...`), so a link printed by
 * the server logs the user straight in. Fragments never reach the server or its logs; the
 * token is removed from the address bar at once.
 */
export function takeTokenFromUrl() {
  const match = /^#token=([^&]+)/.exec(location.hash);
  if (!match) return false;
  setToken(decodeURIComponent(match[1]), true);
  history.replaceState(null, "", `${location.pathname}${location.search}#/devices`);
  return true;
}

let pending = null;

/**
 * Show the token dialog until the user enters a token the server accepts.
 * `check(token)` resolves to null when the token works, else to an error message.
 * Concurrent callers (several requests failing with 401 at once) share one dialog.
 */
export function promptForToken(message, check) {
  if (pending) {
    showError(message);
    return pending;
  }
  const dialog = document.getElementById("token-dialog");
  const form = document.getElementById("token-form");
  const input = document.getElementById("token-input");
  const remember = document.getElementById("token-remember");
  const forget = document.getElementById("token-forget");
  const cancel = document.getElementById("token-cancel");
  const hadToken = Boolean(getToken());

  pending = new Promise((resolve) => {
    showError(message);
    input.value = "";
    forget.hidden = !hadToken;

    const onSubmit = async (event) => {
      event.preventDefault();
      const token = input.value.trim();
      if (!token) {
        showError("Enter the token first.");
        return;
      }
      const submit = form.querySelector("[type=submit]");
      submit.disabled = true;
      const problem = await check(token);
      submit.disabled = false;
      if (problem) {
        showError(problem);
        input.select();
        return;
      }
      setToken(token, remember.checked);
      finish();
      resolve(token);
    };
    // Without a working token nothing else on the page can work, so the dialog only closes
    // without one when the user opened it to look and the saved token still works.
    const cancelable = () => getToken() && !message;
    cancel.hidden = !cancelable();
    const onCancel = (event) => {
      event.preventDefault();
      if (cancelable()) {
        finish();
        resolve(null);
      }
    };
    const onForget = () => {
      forgetToken();
      forget.hidden = true;
      cancel.hidden = true;
      showError("Token forgotten. Enter a token to continue.");
    };
    const finish = () => {
      form.removeEventListener("submit", onSubmit);
      dialog.removeEventListener("cancel", onCancel);
      cancel.removeEventListener("click", onCancel);
      forget.removeEventListener("click", onForget);
      dialog.close();
      pending = null;
    };
    form.addEventListener("submit", onSubmit);
    dialog.addEventListener("cancel", onCancel);
    cancel.addEventListener("click", onCancel);
    forget.addEventListener("click", onForget);
    dialog.showModal();
    input.focus();
  });
  return pending;
}

function showError(message) {
  const el = document.getElementById("token-error");
  el.textContent = message ?? "";
  el.hidden = !message;
}
