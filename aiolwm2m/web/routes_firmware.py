"""``/api/firmware``: images, campaigns, single-device updates and their jobs; and ``/fw/{token}``,
where devices download an image over HTTP (no API token: the URI's token is the device's).

An image upload is the raw body of ``POST /api/firmware/images`` (``name``, ``version`` and
optionally ``device_types``, ``size`` and ``sha256`` in the query); it streams to the store
under its own limit (``firmware_max_image``), is checked against the declared size and hash,
and leaves nothing behind when it fails or is cut off.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response, status

from aiolwm2m.firmware.delivery import RETRY_AFTER, parse_range
from aiolwm2m.firmware.errors import (
    BadImage,
    BadRequest,
    Conflict,
    FirmwareError,
    ImageTooLarge,
    NotFound,
)
from aiolwm2m.firmware.images import SHA256_TEXT, check_metadata
from aiolwm2m.firmware.records import JOB_STATES, UpdateJob
from aiolwm2m.firmware.service import FirmwareService
from aiolwm2m.server import NotRegistered

from .request_gate import allow_body
from .schemas import ErrorOut
from .schemas_firmware import CampaignIn, CampaignOut, ImageOut, JobOut, JobPage, UpdateIn

router = APIRouter(prefix="/api/firmware", tags=["firmware"])
download_router = APIRouter(tags=["firmware"])
_OCTET = "application/octet-stream"

ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorOut}, 404: {"model": ErrorOut}, 409: {"model": ErrorOut}}
RAW_BODY = {"requestBody": {"required": True, "description": "the image's bytes",
                            "content": {"application/octet-stream": {
                                "schema": {"type": "string", "format": "binary"}}}}}


def get_firmware(request: Request) -> FirmwareService:
    firmware: FirmwareService = request.app.state.firmware
    return firmware


FirmwareDep = Annotated[FirmwareService, Depends(get_firmware)]


@contextmanager
def firmware_errors() -> Iterator[None]:
    """The firmware service's refusals as HTTP statuses, mapped once."""
    try:
        yield
    except ImageTooLarge as e:
        raise HTTPException(413, str(e)) from None
    except (BadImage, BadRequest) as e:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, str(e)) from None
    except NotFound as e:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(e)) from None
    except NotRegistered as e:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(e)) from None
    except Conflict as e:
        raise HTTPException(status.HTTP_409_CONFLICT, str(e)) from None
    except FirmwareError as e:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, str(e)) from None
    except ValueError as e:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, str(e)) from None


def _sha(text: str) -> str:
    if not SHA256_TEXT.fullmatch(text):
        raise HTTPException(status.HTTP_400_BAD_REQUEST,
                            "an image is named by its sha256: 64 lower-case hex digits")
    return text


# -- images ------------------------------------------------------------------------------------


@router.post("/images", response_model=ImageOut, status_code=201, openapi_extra=RAW_BODY,
             responses={**ERRORS, 200: {"model": ImageOut, "description": "these bytes are "
                                        "stored already, with the same name and version"},
                        413: {"model": ErrorOut, "description": "larger than "
                              "firmware_max_image"}},
             summary="Upload a firmware image (the raw body)")
async def upload_image(request: Request, firmware: FirmwareDep, response: Response,
                       name: Annotated[str, Query(max_length=200)],
                       version: Annotated[str, Query(max_length=100)],
                       device_types: Annotated[str, Query(
                           description="comma-separated device types (/3/0/17) it is for; "
                           "empty: any", max_length=8000)] = "",
                       size: Annotated[int | None, Query(ge=0, description="bytes; checked "
                                                         "(default: the Content-Length)")]
                       = None,
                       sha256: Annotated[str | None, Query(description="checked against "
                                                           "the bytes received")] = None
                       ) -> ImageOut:
    declared = size
    if declared is None and request.headers.get("content-length", "").isdigit():
        declared = int(request.headers["content-length"])
    with firmware_errors():
        # Refused before a byte of the body is read: bad metadata, a declared size too big.
        check_metadata(name, version, device_types.split(","), sha256)
        limit = firmware.server.config.firmware_max_image
        if declared is not None and declared > limit:
            raise ImageTooLarge(limit)
        allow_body(request.scope, limit)
        image, created = await firmware.upload(
            request.stream(), name=name, version=version,
            device_types=device_types.split(","), size=declared, sha256=sha256)
    if not created:
        response.status_code = status.HTTP_200_OK
    return ImageOut.of(image)


@router.get("/images", response_model=list[ImageOut], summary="Firmware images, newest first")
async def list_images(firmware: FirmwareDep) -> list[ImageOut]:
    return [ImageOut.of(i) for i in firmware.images.all()]


@router.get("/images/{sha256}", response_model=ImageOut, responses=ERRORS,
            summary="One firmware image")
async def get_image(firmware: FirmwareDep, sha256: str) -> ImageOut:
    image = firmware.image(_sha(sha256))
    if image is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such firmware image")
    return ImageOut.of(image)


@router.delete("/images/{sha256}", response_model=ImageOut, responses=ERRORS,
               summary="Delete a firmware image (not while an unfinished campaign uses it)")
async def delete_image(firmware: FirmwareDep, sha256: str) -> ImageOut:
    with firmware_errors():
        return ImageOut.of(await firmware.delete_image(_sha(sha256)))


# -- campaigns and updates ---------------------------------------------------------------------


def campaign_out(firmware: FirmwareService, campaign_id: str) -> CampaignOut:
    run = firmware.run(campaign_id)
    return CampaignOut.of(run.campaign, len(run.jobs), run.summary(), run.progress())


@router.post("/campaigns", response_model=CampaignOut, status_code=201, responses=ERRORS,
             summary="Start a campaign: an image to a list of devices or a filter")
async def create_campaign(firmware: FirmwareDep, body: CampaignIn) -> CampaignOut:
    with firmware_errors():
        run = await firmware.create_campaign(body.name, _sha(body.image), body.targets,
                                             body.limits.limits())
        return campaign_out(firmware, run.id)


@router.post("/updates", response_model=CampaignOut, status_code=201, responses=ERRORS,
             summary="Update one device (a campaign of one)")
async def update_device(firmware: FirmwareDep, body: UpdateIn) -> CampaignOut:
    with firmware_errors():
        run = await firmware.update_device(body.endpoint, _sha(body.image),
                                           body.limits.limits())
        return campaign_out(firmware, run.id)


@router.get("/campaigns", response_model=list[CampaignOut], summary="Campaigns, newest first")
async def list_campaigns(firmware: FirmwareDep) -> list[CampaignOut]:
    runs = sorted(firmware.runs.values(), key=lambda r: -r.campaign.created_at)
    return [CampaignOut.of(r.campaign, len(r.jobs), r.summary(), r.progress()) for r in runs]


@router.get("/campaigns/{campaign_id}", response_model=CampaignOut, responses=ERRORS,
            summary="One campaign with its counts by job state")
async def get_campaign(firmware: FirmwareDep, campaign_id: str) -> CampaignOut:
    with firmware_errors():
        return campaign_out(firmware, campaign_id)


@router.get("/campaigns/{campaign_id}/jobs", response_model=JobPage, responses=ERRORS,
            summary="A campaign's devices and how far each got")
async def campaign_jobs(firmware: FirmwareDep, campaign_id: str,
                        state: Annotated[str | None, Query(
                            description=f"one of {', '.join(JOB_STATES)}")] = None,
                        offset: Annotated[int, Query(ge=0)] = 0,
                        limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
                        steps: Annotated[bool, Query(description="include each job's steps")]
                        = False) -> JobPage:
    if state is not None and state not in JOB_STATES:
        raise HTTPException(status.HTTP_400_BAD_REQUEST,
                            f"state is one of {', '.join(JOB_STATES)}")
    with firmware_errors():
        run = firmware.run(campaign_id)
    jobs: list[UpdateJob] = [j for j in run.jobs.values() if state is None or j.state == state]
    return JobPage(total=len(jobs), offset=offset, limit=limit,
                   items=[JobOut.of(j, steps=steps) for j in jobs[offset:offset + limit]])


def _control(name: str, summary: str) -> None:
    async def control(firmware: FirmwareDep, campaign_id: str) -> CampaignOut:
        with firmware_errors():
            await getattr(firmware, name)(campaign_id)
            return campaign_out(firmware, campaign_id)

    control.__name__ = f"{name}_campaign"
    router.post(f"/campaigns/{{campaign_id}}/{name}", response_model=CampaignOut,
                responses=ERRORS, summary=summary)(control)


_control("pause", "Pause: no new device starts (those running finish)")
_control("resume", "Resume a paused campaign, or one the failure rate stopped")
_control("cancel", "Cancel: no new starts; devices not yet told to Update are reset")


@router.delete("/campaigns/{campaign_id}", status_code=204, responses=ERRORS,
               summary="Forget a finished or cancelled campaign and its jobs")
async def remove_campaign(firmware: FirmwareDep, campaign_id: str) -> Response:
    with firmware_errors():
        await firmware.remove(campaign_id)
    return Response(status_code=204)


@router.get("/jobs", response_model=list[JobOut], responses=ERRORS,
            summary="Every firmware update of one device, oldest first, with their steps")
async def device_jobs(firmware: FirmwareDep,
                      endpoint: Annotated[str, Query(min_length=1)]) -> list[JobOut]:
    return [JobOut.of(j, steps=True) for j in firmware.jobs_of(endpoint)]


@router.get("/jobs/{job_id}", response_model=JobOut, responses=ERRORS,
            summary="One device's update with every step")
async def get_job(firmware: FirmwareDep, job_id: str) -> JobOut:
    with firmware_errors():
        return JobOut.of(firmware.job(job_id), steps=True)


# -- HTTP(S) pull --------------------------------------------------------------------------------


@download_router.api_route("/fw/{token}", methods=["GET", "HEAD"], include_in_schema=False)
async def download(request: Request, firmware: FirmwareDep, token: str) -> Response:
    """An image for the device whose update job holds ``token``; ``Range`` resumes."""
    deliveries = firmware.deliveries
    if deliveries.stopped:
        return Response(b'{"detail":"restarting"}', 503, media_type="application/json",
                        headers={"Retry-After": str(RETRY_AFTER)})
    delivery = deliveries.find(token) if len(token) <= 64 else None
    if delivery is None:
        client = request.client
        firmware.server.refusals.refused(
            transport="http", reason="firmware-unknown-token",
            detail="no delivery with this token",
            peer=f"{client.host}:{client.port}" if client else None)
        return Response(b'{"detail":"no such firmware"}', 404,
                        media_type="application/json")
    size = len(delivery.content)
    etag = f'"{delivery.image.sha256}"'
    headers = {"Accept-Ranges": "bytes", "ETag": etag}
    wanted = parse_range(request.headers.get("range"), size)
    if_range = request.headers.get("if-range")
    if if_range is not None and if_range != etag:
        wanted = None  # the representation the client has is another: send it whole
    if wanted is False:
        return Response(status_code=416, headers={**headers,
                                                  "Content-Range": f"bytes */{size}"})
    start, end = wanted if isinstance(wanted, tuple) else (0, size)
    code = 206 if isinstance(wanted, tuple) else 200
    if code == 206:
        headers["Content-Range"] = f"bytes {start}-{end - 1}/{size}"
    if request.method == "HEAD":
        headers["Content-Length"] = str(end - start)
        return Response(status_code=code, headers=headers, media_type=_OCTET)
    deliveries.served(delivery, start, end - start)
    return Response(delivery.content[start:end], code, headers=headers, media_type=_OCTET)
