"""A short 400 for a request body that is not JSON at all (FastAPI's default is a 422 with
a list of validation errors); validation errors of well-formed JSON keep FastAPI's 422."""

from __future__ import annotations

from fastapi import Request, status
from fastapi.exception_handlers import request_validation_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response


async def bad_json_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    for error in exc.errors():
        if error.get("type") == "json_invalid":
            reason = str(error.get("ctx", {}).get("error", "malformed"))[:80]
            loc = error.get("loc", ())
            where = f" at character {loc[1]}" if len(loc) > 1 and isinstance(loc[1], int) else ""
            return JSONResponse({"detail": f"request body is not valid JSON: {reason}{where}"},
                                status_code=status.HTTP_400_BAD_REQUEST)
    return await request_validation_exception_handler(request, exc)
