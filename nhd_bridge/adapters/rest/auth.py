"""How a ``kind: rest`` instance proves who it is: one model per ``auth.type``, each building
the :class:`httpx.Auth` that signs every request of the instance.

Secrets are :class:`~pydantic.SecretStr`: never in ``repr``, logs or error messages. An OAuth 2
access token is a secret too: registered for redaction as soon as it is issued.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Generator
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import httpx
from pydantic import BaseModel, ConfigDict, Field, SecretStr

from nhd_bridge.core.adapter import PermanentError, TransientError
from nhd_bridge.core.redaction import REDACTED, redact, register_secret

__all__ = [
    "TOKEN_MARGIN_SECONDS",
    "ApiKeyAuth",
    "Auth",
    "BasicAuth",
    "BearerAuth",
    "ClientCredentialsFlow",
    "NoAuth",
    "OAuth2ClientCredentials",
]

# An OAuth token is renewed this long before the server says it expires.
TOKEN_MARGIN_SECONDS = 30.0

TokenSink = Callable[[str], None]


class _Auth(BaseModel):
    model_config = ConfigDict(extra="forbid")

    def httpx_auth(self, client: httpx.Client, *, on_token: TokenSink | None = None) -> httpx.Auth:
        """What signs the instance's requests. ``client`` sends them (OAuth asks it for its
        token); ``on_token`` hears of each secret issued while running (an access token)."""
        raise NotImplementedError

    def hint(self) -> str:
        """What to check when the tracker refuses the credentials (HTTP 401)."""
        raise NotImplementedError


class NoAuth(_Auth):
    """No credentials (a tracker open to anonymous API calls, or auth done by a proxy)."""

    type: Literal["none"] = "none"

    def httpx_auth(self, client: httpx.Client, *, on_token: TokenSink | None = None) -> httpx.Auth:
        return httpx.Auth()  # httpx's own "no authentication"

    def hint(self) -> str:
        return "the tracker wants credentials: set auth"


class BearerAuth(_Auth):
    """``Authorization: Bearer <token>`` (GitHub tokens, most SaaS personal access tokens)."""

    type: Literal["bearer"]
    token: SecretStr
    scheme: str = Field(default="Bearer", description="the word before the token")

    def httpx_auth(self, client: httpx.Client, *, on_token: TokenSink | None = None) -> httpx.Auth:
        return _Header("Authorization", f"{self.scheme} {self.token.get_secret_value()}")

    def hint(self) -> str:
        return "check auth.token (expired or revoked?)"


class BasicAuth(_Auth):
    """HTTP basic authentication (Roundup, Redmine with a login)."""

    type: Literal["basic"]
    username: str
    password: SecretStr

    def httpx_auth(self, client: httpx.Client, *, on_token: TokenSink | None = None) -> httpx.Auth:
        return httpx.BasicAuth(self.username, self.password.get_secret_value())

    def hint(self) -> str:
        return f"check auth.username ({self.username!r}) and auth.password"


class ApiKeyAuth(_Auth):
    """An API key in a header (``X-Redmine-API-Key``) or a query parameter (``?key=``)."""

    type: Literal["api_key"]
    name: str = Field(description="header or query parameter name")
    key: SecretStr
    location: Literal["header", "query"] = "header"
    prefix: str = Field(default="", description="text before the key, e.g. 'token '")

    def httpx_auth(self, client: httpx.Client, *, on_token: TokenSink | None = None) -> httpx.Auth:
        value = self.prefix + self.key.get_secret_value()
        if self.location == "header":
            return _Header(self.name, value)
        return _QueryParameter(self.name, value)

    def hint(self) -> str:
        return f"check auth.key (sent as {self.location} {self.name!r})"


class OAuth2ClientCredentials(_Auth):
    """OAuth 2 client credentials grant; the token is cached until shortly before it expires."""

    type: Literal["oauth2_client_credentials"]
    token_url: str
    client_id: str
    client_secret: SecretStr
    scope: str | None = None
    audience: str | None = None
    client_auth: Literal["basic", "body"] = Field(
        default="basic", description="send the client secret as basic auth or in the form body"
    )

    def httpx_auth(self, client: httpx.Client, *, on_token: TokenSink | None = None) -> httpx.Auth:
        return ClientCredentialsFlow(self, client, on_token=on_token)

    def hint(self) -> str:
        return "check auth.client_id, auth.client_secret and auth.scope"


Auth = Annotated[
    NoAuth | BearerAuth | BasicAuth | ApiKeyAuth | OAuth2ClientCredentials,
    Field(discriminator="type"),
]


class _Header(httpx.Auth):
    def __init__(self, name: str, value: str):
        self._name = name
        self._value = value

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers[self._name] = self._value
        yield request

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self._name}>"


class _QueryParameter(_Header):
    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        # Added to the query the URL has (a next-page link's own), never replacing it.
        request.url = request.url.copy_set_param(self._name, self._value)
        yield request


class ClientCredentialsFlow(httpx.Auth):
    """Signs requests with an OAuth 2 access token from the client credentials grant.

    The token is fetched on first use with ``client`` and kept until
    :data:`TOKEN_MARGIN_SECONDS` before it expires. A 401 (revoked, or expired early) drops it:
    the request is sent once more with a fresh token. The token endpoint failing is a
    :class:`TransientError` (unreachable, 5xx) or a :class:`PermanentError` (refused): nothing of
    the request itself was sent, so it is never mistaken for a lost write."""

    requires_request_body = True  # a request answered 401 is sent again, body and all

    def __init__(
        self,
        settings: OAuth2ClientCredentials,
        client: httpx.Client,
        *,
        on_token: TokenSink | None = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        self._settings = settings
        self._client = client
        self._on_token = on_token
        self._clock = clock
        self._token: tuple[str, float] | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"<ClientCredentialsFlow {self._settings.client_id!r} at {self._where}>"

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        token = self.token()
        request.headers["Authorization"] = f"Bearer {token}"
        response = yield request
        if response.status_code == 401:
            self.forget(token)
            request.headers["Authorization"] = f"Bearer {self.token()}"
            yield request

    def token(self) -> str:
        """A valid access token: the cached one, or a fresh one from the token endpoint."""
        with self._lock:
            now = self._clock()
            if self._token is not None and self._token[1] > now:
                return self._token[0]
            token, lifetime = self._fetch()
            self._token = (token, now + max(lifetime - TOKEN_MARGIN_SECONDS, 1.0))
            return token

    def forget(self, token: str) -> None:
        """Drop ``token`` (refused by the API); another thread's fresher token stays."""
        with self._lock:
            if self._token is not None and self._token[0] == token:
                self._token = None

    def _fetch(self) -> tuple[str, float]:
        settings = self._settings
        form = {"grant_type": "client_credentials"}
        if settings.scope:
            form["scope"] = settings.scope
        if settings.audience:
            form["audience"] = settings.audience
        secret = settings.client_secret.get_secret_value()
        # Always given, if only as httpx's "none": the client's own auth is this very flow.
        client_auth = httpx.Auth()
        if settings.client_auth == "basic":
            client_auth = httpx.BasicAuth(settings.client_id, secret)
        else:
            form |= {"client_id": settings.client_id, "client_secret": secret}
        try:
            response = self._client.post(settings.token_url, data=form, auth=client_auth)
        except httpx.TransportError as error:
            raise TransientError(
                f"the OAuth token endpoint {self._where} could not be reached "
                f"({type(error).__name__})"
            ) from None
        if response.status_code >= 400:
            detail = _oauth_error(response)
            error_class = TransientError if response.status_code >= 500 else PermanentError
            raise error_class(
                redact(
                    f"getting an OAuth token from {self._where} failed: HTTP "
                    f"{response.status_code}{': ' + detail if detail else ''}; check "
                    "auth.client_id, auth.client_secret and auth.scope"
                ).replace(secret, REDACTED)
            )
        data = _json_object(response)
        token = data.get("access_token")
        if not token:
            raise PermanentError(
                f"the OAuth token endpoint {self._where} answered without an access_token"
            )
        register_secret(str(token))
        if self._on_token is not None:
            self._on_token(str(token))
        return str(token), float(data.get("expires_in") or 3600)

    @property
    def _where(self) -> str:
        parts = urlsplit(self._settings.token_url)
        return f"{parts.scheme}://{parts.netloc}{parts.path}"


def _json_object(response: httpx.Response) -> dict[str, Any]:
    try:
        data = response.json()
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _oauth_error(response: httpx.Response) -> str:
    """The token endpoint's own words (RFC 6749 ``error_description`` / ``error``), one line."""
    data = _json_object(response)
    message = data.get("error_description") or data.get("error") or data.get("message")
    text = " ".join(str(message if message else response.text).split())
    return text[:300] + ("…" if len(text) > 300 else "")
