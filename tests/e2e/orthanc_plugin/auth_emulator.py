"""Wire-level emulator of the official Orthanc authorization plugin, for end-to-end tests.

The official plugin cannot be installed on the test machines (no Debian package, no Docker
engine), so this Orthanc Python plugin reproduces what it sends to, and expects from, the
token service, as documented in ``shared/docs/protocol.md`` sections 3 and 4. It runs inside
Orthanc's embedded Python, so it uses the standard library only.

Configuration: a top-level ``"AuthEmulator"`` section of the Orthanc configuration, with the
keys of the official ``"Authorization"`` section:

* ``Mode``: ``"legacy"`` (plugin 0.4.1) or ``"current"`` (0.5+, following 0.11.4/HEAD).
* ``WebService``: the validation URL. Required in legacy mode; in current mode an alias used
  when neither ``WebServiceRootUrl`` nor ``WebServiceTokenValidationUrl`` is set.
* Current mode only: ``WebServiceRootUrl`` (derives ``<root>/tokens/validate``,
  ``<root>/tokens/decode`` and the creation base ``<root>/tokens/``; the individual keys are
  then ignored), else ``WebServiceTokenValidationUrl``, ``WebServiceTokenDecoderUrl`` and
  ``WebServiceTokenCreationBaseUrl``.
* ``WebServiceUsername`` + ``WebServicePassword`` (HTTP Basic, only when both are set),
  ``WebServiceIdentifier``, ``TokenHttpHeaders``, ``TokenGetArguments``,
  ``StandardConfigurations``, ``UncheckedResources``, ``UncheckedFolders``, ``CheckedLevel``
  or ``UncheckedLevels``.
* ``WebServiceTimeout``: emulator-only, seconds (default 10, the plugin's fixed value), so that
  tests can exercise timeouts quickly.

A configuration error raises at load time, which makes Orthanc refuse to start, as the
official plugin does: a broken setup must never leave an Orthanc without its filter.

Differences between the two modes (protocol.md §3.1, §3.6, §4):

================================  ===========================  =============================
aspect                            legacy (0.4.1)               current (0.11.4)
================================  ===========================  =============================
server identifier field           ``identifier``               ``server-id``
JSON body                         pretty-printed               compact, plus empty ``Expect:``
no configured token present       denied without a call        one anonymous call, cached
no token configured at all        one uncached call            one anonymous call, cached
GET-argument token as header      no                           yes (0.7.1+)
GET-argument names                case-sensitive               case-insensitive (0.11.1+)
``system`` level with CheckedLevel  checked (call with ``uri``)  unchecked, so denied
DICOMweb root                     always ``/dicom-web/``       ``DicomWeb.Root``
``/auth/tokens/*`` routes         none                         creation and decode
================================  ===========================  =============================

Deliberate departures from the official plugin, all in favour of testing our token service
rather than the plugin's historical bugs:

* Legacy mode maps URIs like the fixed versions (0.11.4): DICOMweb sub-routes such as
  ``/metadata``, ``/rendered`` or frames and QIDO queries are mapped to their study instead of
  being granted without any call (hole 1 of protocol.md §3.9), and a request whose accessed
  resources are all unchecked (e.g. ``/patients/{id}`` with ``CheckedLevel: studies``) is
  denied instead of granted (hole 2). Both modes therefore follow the 0.6.2+ rule: at least
  one checked resource, and every checked resource granted.
* User-profile mode is not emulated. Its only effect a share-only Orthanc relies on, the
  default permission ``["post", "^/auth/tokens/decode$", ""]``, is reproduced by letting
  ``POST /auth/tokens/decode`` through the filter when a decoder URL is configured. The
  ``/tools/find`` override is not emulated, so the plain ``GET /dicom-web/studies`` special
  case of §4.2 is denied like any other system URI (``POST /tools/lookup`` too).
* When the token service fails, ``/auth/tokens/*`` answers 502 with a small JSON body. The
  official plugin sends no answer (protocol.md §9); Orthanc 1.10.1 then closes the connection
  without any status line, which no client can interpret.
* ``validity-duration`` is only sent when the caller gave a positive ``ValidityDuration`` (the
  official plugin may send an uninitialised value otherwise).
* ``labels`` are never sent: Orthanc 1.10.1 has no labels.
* The resource-hierarchy cache is dropped entirely on any deletion.

Token values are never logged.
"""

from __future__ import annotations

import base64
import collections
import json
import re
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass

import orthanc

CONFIG_SECTION = "AuthEmulator"
LEGACY = "legacy"
CURRENT = "current"

PATIENT = "patient"
STUDY = "study"
SERIES = "series"
INSTANCE = "instance"
SYSTEM = "system"
ALL_LEVELS = frozenset((PATIENT, STUDY, SERIES, INSTANCE, SYSTEM))

# Token sources sort headers first, then by name, as the plugin's std::set<Token> does.
HEADER = 0
GET_ARGUMENT = 1

CACHE_CAPACITY = 10000
MAX_ANSWER_BYTES = 1024 * 1024
DEFAULT_TIMEOUT_SECONDS = 10.0
MAX_VALIDITY = 2**31 - 1  # the plugin reads "validity" with JsonCpp's asInt()

METHOD_NAMES = {
    orthanc.HttpMethod.GET: "get",
    orthanc.HttpMethod.POST: "post",
    orthanc.HttpMethod.PUT: "put",
    orthanc.HttpMethod.DELETE: "delete",
}

LEVEL_NAMES = {
    "patient": PATIENT,
    "patients": PATIENT,
    "study": STUDY,
    "studies": STUDY,
    "series": SERIES,
    "instance": INSTANCE,
    "instances": INSTANCE,
    "system": SYSTEM,
}

# Per level: the main DICOM tag holding its identifier, and the key naming its parent.
DICOM_UID_TAGS = {
    PATIENT: "PatientID",
    STUDY: "StudyInstanceUID",
    SERIES: "SeriesInstanceUID",
    INSTANCE: "SOPInstanceUID",
}
PARENTS = {
    STUDY: (PATIENT, "ParentPatient"),
    SERIES: (STUDY, "ParentStudy"),
    INSTANCE: (SERIES, "ParentSeries"),
}
REST_ROOTS = {
    PATIENT: "/patients/",
    STUDY: "/studies/",
    SERIES: "/series/",
    INSTANCE: "/instances/",
}
LOOKUPS = {
    PATIENT: orthanc.LookupPatient,
    STUDY: orthanc.LookupStudy,
    SERIES: orthanc.LookupSeries,
    INSTANCE: orthanc.LookupInstance,
}


class ConfigurationError(Exception):
    """The AuthEmulator section is missing or invalid."""


class ServiceError(Exception):
    """The token service failed or gave an answer the plugin would reject."""


class UnknownResourceError(Exception):
    """A URI names a resource Orthanc does not have."""


class BadRequestError(Exception):
    """The client's body on an /auth/tokens/* route is unusable."""


@dataclass(frozen=True)
class Preset:
    """What one entry of StandardConfigurations adds (protocol.md §3.2)."""

    folders: tuple = ()
    resources: tuple = ()
    headers: tuple = ()
    get_arguments: tuple = ()
    since_current: bool = False  # added after 0.4.1, so unknown in legacy mode


STANDARD_CONFIGURATIONS = {
    "osimis-web-viewer": Preset(
        folders=("/osimis-viewer/app/", "/osimis-viewer/languages/"),
        resources=("/osimis-viewer/config.js",),
        headers=("token",),
        get_arguments=("token",),
    ),
    "stone-webviewer": Preset(
        folders=("/stone-webviewer/",), resources=("/system",), headers=("Authorization",)
    ),
    "orthanc-explorer-2": Preset(
        folders=("/ui/app/", "/ui/landing/"),
        resources=(
            "/",
            "/ui/api/pre-login-configuration",
            "/ui/api/configuration",
            "/auth/user/profile",
        ),
        headers=("Authorization", "token"),
        get_arguments=("token",),
        since_current=True,
    ),
    "ohif": Preset(folders=("/ohif/",), headers=("Authorization",), since_current=True),
}


@dataclass(frozen=True, order=True)
class TokenSource:
    """A configured place where a token may be found."""

    kind: int  # HEADER or GET_ARGUMENT
    name: str  # as configured; also the "token-key" sent to the service


@dataclass(frozen=True)
class PresentedToken:
    """A token found in a request."""

    source: TokenSource
    value: str


@dataclass(frozen=True)
class Resource:
    """One accessed resource; for the system level ``orthanc_id`` holds the URI."""

    level: str
    orthanc_id: str
    dicom_uid: str = ""


@dataclass(frozen=True)
class Settings:
    """The parsed AuthEmulator section."""

    mode: str
    validation_url: str
    decoder_url: str
    creation_base_url: str
    credentials: tuple | None  # (username, password)
    server_id: str | None
    tokens: tuple  # sorted TokenSource
    unchecked_resources: frozenset
    unchecked_folders: tuple
    checked_levels: frozenset
    dicomweb_root: str  # without trailing slash
    timeout: float


# --------------------------------------------------------------------------- configuration


def _string(section, key):
    value = section.get(key, "")
    if not isinstance(value, str):
        raise ConfigurationError(f"{key} must be a string")
    return value


def _strings(section, key):
    value = section.get(key, [])
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ConfigurationError(f"{key} must be a list of strings")
    return value


def join_uri(base, suffix):
    """Join with exactly one slash, like Orthanc's Toolbox::JoinUri."""
    if base.endswith("/") and suffix.startswith("/"):
        return base + suffix[1:]
    if not base.endswith("/") and not suffix.startswith("/"):
        return base + "/" + suffix
    return base + suffix


def _service_urls(section, mode):
    """Return (validation, decoder, creation base) URLs; empty strings when absent."""
    current_only = (
        "WebServiceRootUrl",
        "WebServiceTokenValidationUrl",
        "WebServiceTokenDecoderUrl",
        "WebServiceTokenCreationBaseUrl",
    )
    if mode == LEGACY:
        # Refuse keys 0.4.1 did not know: a test relying on them would test nothing.
        for key in current_only:
            if key in section:
                raise ConfigurationError(f"{key} does not exist in legacy mode")
        validation = _string(section, "WebService")
        if not validation:
            raise ConfigurationError("WebService is required in legacy mode")
        return validation, "", ""

    root = _string(section, "WebServiceRootUrl")
    if root:
        return (
            join_uri(root, "/tokens/validate"),
            join_uri(root, "/tokens/decode"),
            join_uri(root, "/tokens/"),
        )
    validation = _string(section, "WebServiceTokenValidationUrl") or _string(section, "WebService")
    return (
        validation,
        _string(section, "WebServiceTokenDecoderUrl"),
        _string(section, "WebServiceTokenCreationBaseUrl"),
    )


def _checked_levels(section, mode):
    if "CheckedLevel" in section and "UncheckedLevels" in section:
        raise ConfigurationError("CheckedLevel and UncheckedLevels are mutually exclusive")
    if "CheckedLevel" in section:
        level = LEVEL_NAMES.get(_string(section, "CheckedLevel").lower())
        if level is None or level == SYSTEM:
            raise ConfigurationError("unknown CheckedLevel")
        # Before 0.6.0 the system level stays checked when a CheckedLevel is set.
        return frozenset((level, SYSTEM)) if mode == LEGACY else frozenset((level,))
    unchecked = set()
    for name in _strings(section, "UncheckedLevels"):
        if name.lower() not in LEVEL_NAMES:
            raise ConfigurationError("unknown level in UncheckedLevels")
        unchecked.add(LEVEL_NAMES[name.lower()])
    return ALL_LEVELS - unchecked


def load_settings(configuration):
    """Build Settings from the full Orthanc configuration (a dict)."""
    section = configuration.get(CONFIG_SECTION)
    if not isinstance(section, dict):
        raise ConfigurationError(f"missing {CONFIG_SECTION} section")
    mode = _string(section, "Mode")
    if mode not in (LEGACY, CURRENT):
        raise ConfigurationError('Mode must be "legacy" or "current"')
    validation_url, decoder_url, creation_base_url = _service_urls(section, mode)

    tokens = {TokenSource(HEADER, name) for name in _strings(section, "TokenHttpHeaders")}
    tokens |= {TokenSource(GET_ARGUMENT, name) for name in _strings(section, "TokenGetArguments")}
    resources = set(_strings(section, "UncheckedResources"))
    folders = list(_strings(section, "UncheckedFolders"))
    for name in _strings(section, "StandardConfigurations"):
        preset = STANDARD_CONFIGURATIONS.get(name)
        if preset is None or (preset.since_current and mode == LEGACY):
            raise ConfigurationError(f"unknown standard configuration {name!r} for this mode")
        folders.extend(preset.folders)
        resources.update(preset.resources)
        tokens |= {TokenSource(HEADER, header) for header in preset.headers}
        tokens |= {TokenSource(GET_ARGUMENT, argument) for argument in preset.get_arguments}

    username = _string(section, "WebServiceUsername")
    password = _string(section, "WebServicePassword")
    timeout = section.get("WebServiceTimeout", DEFAULT_TIMEOUT_SECONDS)
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0:
        raise ConfigurationError("WebServiceTimeout must be a positive number")

    if mode == CURRENT:
        dicomweb = configuration.get("DicomWeb", {})
        dicomweb_root = dicomweb.get("Root", "/dicom-web/") if isinstance(dicomweb, dict) else ""
    else:
        dicomweb_root = "/dicom-web/"  # 0.4.x looked for DicomWeb in the wrong section

    return Settings(
        mode=mode,
        validation_url=validation_url,
        decoder_url=decoder_url,
        creation_base_url=creation_base_url,
        credentials=(username, password) if username and password else None,
        server_id=_string(section, "WebServiceIdentifier") or None,
        tokens=tuple(sorted(tokens)),
        unchecked_resources=frozenset(resources),
        unchecked_folders=tuple(folders),
        checked_levels=_checked_levels(section, mode),
        dicomweb_root=str(dicomweb_root).rstrip("/"),
        timeout=float(timeout),
    )


# --------------------------------------------------------------------------- caches


class DecisionCache:
    """Grants and denials kept for ``validity`` seconds, LRU-bounded like the plugin's."""

    def __init__(self, capacity=CACHE_CAPACITY):
        self._capacity = capacity
        self._entries = collections.OrderedDict()
        self._lock = threading.Lock()

    def get(self, key):
        """Return the cached decision, or None when absent or expired."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            granted, expires_at = entry
            if time.monotonic() >= expires_at:
                del self._entries[key]
                return None
            self._entries.move_to_end(key)
            return granted

    def put(self, key, granted, validity):
        """Store a decision; validity 0 means "do not cache" (the code, not the Book)."""
        if validity <= 0:
            return
        with self._lock:
            self._entries[key] = (granted, time.monotonic() + validity)
            self._entries.move_to_end(key)
            while len(self._entries) > self._capacity:
                self._entries.popitem(last=False)


class ResourceHierarchy:
    """Orthanc ids, DICOM UIDs and parents, read through the in-process REST API.

    ``orthanc.RestApiGet`` and ``orthanc.Lookup*`` bypass the HTTP filter. Unknown resources
    raise, and the filter then denies (403, not 404), like the plugin.
    """

    def __init__(self):
        self._described = {}  # (level, orthanc id) -> (dicom uid, parent orthanc id)
        self._looked_up = {}  # (level, dicom uid) -> orthanc id
        self._lock = threading.Lock()

    def clear(self):
        with self._lock:
            self._described.clear()
            self._looked_up.clear()

    def _remember(self, table, key, value):
        with self._lock:
            if len(table) >= CACHE_CAPACITY:
                table.clear()
            table[key] = value

    def describe(self, level, orthanc_id):
        """Return (DICOM UID or "", parent Orthanc id or None) of a resource."""
        key = (level, orthanc_id)
        with self._lock:
            cached = self._described.get(key)
        if cached is not None:
            return cached
        answer = json.loads(orthanc.RestApiGet(REST_ROOTS[level] + orthanc_id))
        dicom_uid = answer.get("MainDicomTags", {}).get(DICOM_UID_TAGS[level], "")
        parent = answer[PARENTS[level][1]] if level in PARENTS else None
        self._remember(self._described, key, (dicom_uid, parent))
        return dicom_uid, parent

    def lookup(self, level, dicom_uid):
        """Return the Orthanc id of a DICOM UID at a level."""
        key = (level, dicom_uid)
        with self._lock:
            cached = self._looked_up.get(key)
        if cached is not None:
            return cached
        orthanc_id = LOOKUPS[level](dicom_uid)
        if not orthanc_id:
            raise UnknownResourceError(f"unknown {level}")
        self._remember(self._looked_up, key, orthanc_id)
        return orthanc_id

    def chain(self, level, orthanc_id):
        """The resource and all its ancestors, patient first."""
        resources = []
        while True:
            dicom_uid, parent = self.describe(level, orthanc_id)
            resources.append(Resource(level, orthanc_id, dicom_uid))
            if parent is None:
                return resources[::-1]
            level, orthanc_id = PARENTS[level][0], parent

    def detect_level(self, orthanc_id):
        """Find the level of a bare Orthanc id, in the plugin's probing order."""
        for level in (STUDY, PATIENT, SERIES, INSTANCE):
            try:
                self.describe(level, orthanc_id)
                return level
            except orthanc.OrthancException:
                continue
        raise UnknownResourceError("unknown resource")


# --------------------------------------------------------------------------- URI mapping

_ID = r"([a-f0-9-]+)"
_ORTHANC_ID_ROUTES = (
    (re.compile(rf"/patients/{_ID}(?:/.*)?"), PATIENT),
    (re.compile(rf"/studies/{_ID}(?:/.*)?"), STUDY),
    (re.compile(rf"/series/{_ID}(?:/.*)?"), SERIES),
    (re.compile(rf"/instances/{_ID}(?:/.*)?"), INSTANCE),
    (
        re.compile(
            rf"/(?:web-viewer/series|web-viewer/is-stable-series|wsi/pyramids|wsi/tiles)"
            rf"/{_ID}(?:/.*)?"
        ),
        SERIES,
    ),
    (re.compile(rf"/web-viewer/instances/[a-z0-9]+-{_ID}_[0-9]+"), INSTANCE),
    (re.compile(rf"/osimis-viewer/series/{_ID}(?:/.*)?"), SERIES),
    (re.compile(rf"/osimis-viewer/studies/{_ID}(?:/.*)?"), STUDY),
    (re.compile(rf"/osimis-viewer/(?:images|custom-command)/{_ID}(?:/.*)?"), INSTANCE),
)
_ARCHIVE_TOOLS = re.compile(r"/tools/(?:create-archive|create-media|create-media-extended)")

# QIDO arguments, matched in lower case (0.11.1+); the first of each pair that is set wins.
_QIDO_KEYS = {
    STUDY: ("0020000d", "studyinstanceuid"),
    SERIES: ("0020000e", "seriesinstanceuid"),
    INSTANCE: ("00080018", "sopinstanceuid"),
    PATIENT: ("00100020", "patientid"),
}


class UriMapper:
    """Maps a URI to the resources it accesses (protocol.md §3.4, 0.11.4/HEAD variant)."""

    def __init__(self, settings, hierarchy):
        self._settings = settings
        self._hierarchy = hierarchy
        root = re.escape(settings.dicomweb_root)
        uid = r"([.0-9]+)"
        study = rf"{root}/studies/{uid}"
        series = rf"{study}/series/{uid}"
        instance = rf"{series}/instances/{uid}"
        self._dicomweb_routes = (
            re.compile(rf"{study}(?:/series|/metadata|/instances|/rendered|/thumbnail)?/?"),
            re.compile(rf"{series}(?:/instances|/rendered|/thumbnail|/metadata)?/?"),
            re.compile(rf"{instance}(?:/|/frames/.*|/rendered|/thumbnail|/metadata|/bulk/.*)?/?"),
        )
        self._qido = re.compile(rf"{root}/(?:studies|series|instances)/?")

    def map(self, uri, get_arguments):
        """Return the accessed resources, patient first; raises for unknown resources."""
        for pattern, level in _ORTHANC_ID_ROUTES:
            match = pattern.fullmatch(uri)
            if match:
                return self._hierarchy.chain(level, match.group(1))
        for pattern in self._dicomweb_routes:
            match = pattern.fullmatch(uri)
            if match:
                return self._dicom_chain(*match.groups())
        if self._settings.mode == CURRENT and _ARCHIVE_TOOLS.fullmatch(uri):
            resources = self._archive_resources(get_arguments)
            if resources:
                return resources
        if self._qido.fullmatch(uri):
            resources = self._qido_resources(get_arguments)
            if resources:
                return resources
        return [Resource(SYSTEM, uri.rstrip("/"))]

    def _dicom_chain(self, study_uid, series_uid=None, instance_uid=None):
        # Like the plugin, series and instance UIDs are resolved on their own: only their
        # existence is checked, not that they belong to the study in the path.
        study_id = self._hierarchy.lookup(STUDY, study_uid)
        resources = self._hierarchy.chain(STUDY, study_id)
        resources[-1] = Resource(STUDY, study_id, study_uid)
        if series_uid is not None:
            resources.append(
                Resource(SERIES, self._hierarchy.lookup(SERIES, series_uid), series_uid)
            )
        if instance_uid is not None:
            resources.append(
                Resource(INSTANCE, self._hierarchy.lookup(INSTANCE, instance_uid), instance_uid)
            )
        return resources

    def _qido_resources(self, get_arguments):
        lowered = {key.lower(): value for key, value in get_arguments.items()}

        def argument(level):
            for key in _QIDO_KEYS[level]:
                value = lowered.get(key, "")
                if value and "*" not in value:  # wildcards are ignored (HEAD)
                    return value
            return ""

        study, series, instance = argument(STUDY), argument(SERIES), argument(INSTANCE)
        if study and series and instance:
            return self._dicom_chain(study, series, instance)
        if study and series:
            return self._dicom_chain(study, series)
        if study:
            return self._dicom_chain(study)
        patient = argument(PATIENT)
        if patient:
            patient_id = self._hierarchy.lookup(PATIENT, patient)
            return [Resource(PATIENT, patient_id, patient)]
        return []

    def _archive_resources(self, get_arguments):
        resources = []
        for orthanc_id in filter(None, get_arguments.get("resources", "").split(",")):
            level = self._hierarchy.detect_level(orthanc_id)
            resources.extend(self._hierarchy.chain(level, orthanc_id))
        return resources


# --------------------------------------------------------------------------- web service


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """The plugin's HTTP client does not follow redirects: a 3xx is a failure."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


class WebServiceClient:
    """JSON calls to the token service with the plugin's headers and credentials."""

    def __init__(self, settings):
        self._settings = settings
        # No proxy from the environment, no redirects; urllib releases the GIL while waiting,
        # unlike orthanc.HttpPost, so slow validations do not serialise Orthanc.
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirect)

    def _encode(self, body):
        if self._settings.mode == LEGACY:
            # JsonCpp's StyledWriter: 3-space indent, "key" : value, sorted keys.
            text = json.dumps(body, indent=3, separators=(",", " : "), sort_keys=True) + "\n"
        else:
            text = json.dumps(body, separators=(",", ":"), sort_keys=True)
        return text.encode("utf-8")

    def call(self, method, url, body, extra_headers=None):
        """Send ``body`` and return the parsed JSON answer; raises ServiceError on failure."""
        headers = {"Content-Type": "application/json"}
        if self._settings.mode == CURRENT:
            headers["Expect"] = ""
        if self._settings.credentials is not None:
            raw = ":".join(self._settings.credentials)
            headers["Authorization"] = "Basic " + base64.b64encode(raw.encode()).decode("ascii")
        headers.update(extra_headers or {})
        request = urllib.request.Request(
            url, data=self._encode(body), headers=headers, method=method
        )
        try:
            with self._opener.open(request, timeout=self._settings.timeout) as response:
                raw_answer = response.read(MAX_ANSWER_BYTES + 1)
        except urllib.error.HTTPError as exc:
            exc.close()
            raise ServiceError(f"HTTP status {exc.code}") from None
        except (OSError, ValueError) as exc:  # URLError, timeouts, bad header values
            raise ServiceError(f"{type(exc).__name__} while calling the service") from None
        if len(raw_answer) > MAX_ANSWER_BYTES:
            raise ServiceError("answer too large")
        try:
            return json.loads(raw_answer)
        except ValueError:
            raise ServiceError("answer is not JSON") from None


def parse_validation_answer(answer):
    """Return (granted, validity) or raise ServiceError, with the plugin's strictness."""
    if not isinstance(answer, dict) or type(answer.get("granted")) is not bool:
        raise ServiceError("syntax error in the answer: granted")
    validity = answer.get("validity", 0)
    # JsonCpp intValue only: bool, float (even 60.0), string and null are rejected.
    if type(validity) is not int or validity < 0 or validity > MAX_VALIDITY:
        raise ServiceError("syntax error in the answer: validity")
    return answer["granted"], validity


def _describe_error(exc):
    """Describe an error for the log without risking a token value in it.

    Only our own messages and Orthanc's are known to be free of request data; for
    anything else (e.g. http.client echoes a bad header value) only the type is logged.
    """
    if isinstance(
        exc,
        (
            ConfigurationError,
            ServiceError,
            BadRequestError,
            UnknownResourceError,
            orthanc.OrthancException,
        ),
    ):
        return f"{type(exc).__name__}: {exc}"
    return type(exc).__name__


# --------------------------------------------------------------------------- the filter


class AuthorizationFilter:
    """The plugin's incoming HTTP request filter."""

    def __init__(self, settings, client, mapper):
        self._settings = settings
        self._client = client
        self._mapper = mapper
        self._cache = DecisionCache()
        self._server_field = "identifier" if settings.mode == LEGACY else "server-id"

    def __call__(self, uri, **request):
        try:
            return self._authorize(uri, request)
        except Exception as exc:  # noqa: BLE001 - an uncaught error would give 500, not 403
            orthanc.LogWarning(f"AuthEmulator: denied {uri} ({_describe_error(exc)})")
            return False

    def _authorize(self, uri, request):
        method = METHOD_NAMES.get(request.get("method"))
        if method is None:
            return False
        if method == "get" and self._is_unchecked(uri):
            return True
        if method == "post" and uri == "/auth/tokens/decode" and self._settings.decoder_url:
            return True  # stands for the default user-profile permission, see module docstring
        # Orthanc only parses query arguments for GET requests.
        get_arguments = request.get("get", {}) if method == "get" else {}
        tokens = self._presented_tokens(request.get("headers", {}), get_arguments)
        checked = [
            resource
            for resource in self._mapper.map(uri, get_arguments)
            if resource.level in self._settings.checked_levels
        ]
        if not checked:
            orthanc.LogInfo(f"AuthEmulator: denied {uri} (no checked resource)")
            return False
        for resource in checked:
            if not self._is_resource_granted(method, resource, tokens):
                orthanc.LogInfo(f"AuthEmulator: denied {uri} at level {resource.level}")
                return False
        return True

    def _is_unchecked(self, uri):
        return uri in self._settings.unchecked_resources or any(
            uri.startswith(folder) for folder in self._settings.unchecked_folders
        )

    def _presented_tokens(self, headers, get_arguments):
        if self._settings.mode == CURRENT:
            get_arguments = {key.lower(): value for key, value in get_arguments.items()}
        found = []
        for source in self._settings.tokens:
            if source.kind == HEADER:
                value = headers.get(source.name.lower())  # Orthanc lower-cases header names
            elif self._settings.mode == CURRENT:
                value = get_arguments.get(source.name.lower())
            else:
                value = get_arguments.get(source.name)
            if value is not None:
                found.append(PresentedToken(source, value))
        return found

    def _is_resource_granted(self, method, resource, tokens):
        if not tokens:
            if self._settings.mode == CURRENT:
                return self._cached_validation(method, resource, None)
            if self._settings.tokens:
                return False  # 0.4.x: a configured token is required
            return self._validate(method, resource, None)[0]  # 0.4.x: not cached
        # The first granting token wins; a failing call denies the whole request.
        return any(self._cached_validation(method, resource, token) for token in tokens)

    def _cached_validation(self, method, resource, token):
        key = "|".join((method, resource.level, resource.orthanc_id))
        if token is None:
            key += "|anonymous"
        else:
            key += f"|{token.source.name}|{token.value}"
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        granted, validity = self._validate(method, resource, token)
        self._cache.put(key, granted, validity)
        return granted

    def _validate(self, method, resource, token):
        body = {
            "method": method,
            "level": resource.level,
            self._server_field: self._settings.server_id,
        }
        if resource.level == SYSTEM:
            body["uri"] = resource.orthanc_id
        else:
            body["orthanc-id"] = resource.orthanc_id
            body["dicom-uid"] = resource.dicom_uid
        headers = {}
        if token is not None:
            body["token-key"] = token.source.name
            body["token-value"] = token.value
            headers = self._forwarded_token_header(token)
        answer = self._client.call("POST", self._settings.validation_url, body, headers)
        return parse_validation_answer(answer)

    def _forwarded_token_header(self, token):
        if token.source.kind == GET_ARGUMENT and self._settings.mode == LEGACY:
            return {}  # forwarding GET-argument tokens arrived in 0.7.1
        if token.source.name.lower() == "authorization" and self._settings.credentials:
            return {}  # the Basic credentials win (0.4.0+)
        return {token.source.name: token.value}


# --------------------------------------------------------------------------- /auth/tokens/*


def _optional_string(value, what):
    if value is None:
        return ""
    if not isinstance(value, str):
        raise BadRequestError(f"{what} must be a string")
    return value


def creation_request_body(token_type, body, server_id):
    """Convert OE2's PUT /auth/tokens/{type} body into the service's PUT /tokens/{type} body."""
    if not isinstance(body, dict):
        raise BadRequestError("a JSON object was expected")
    resources = body.get("Resources") or []
    if not isinstance(resources, list):
        raise BadRequestError("Resources must be a list")
    converted = []
    for item in resources:
        if not isinstance(item, dict):
            raise BadRequestError("each resource must be an object")
        resource = {}
        for source_key, target_key in (
            ("DicomUid", "dicom-uid"),
            ("OrthancId", "orthanc-id"),
            ("Url", "url"),
            ("Level", "level"),
        ):
            value = _optional_string(item.get(source_key), source_key)
            if value:
                resource[target_key] = value
        converted.append(resource)

    request = {"resources": converted, "type": token_type, "server-id": server_id}
    identifier = _optional_string(body.get("ID"), "ID")  # OE2 sends "Id": lost, as upstream
    if identifier:
        request["id"] = identifier
    expiration = _optional_string(body.get("ExpirationDate"), "ExpirationDate")
    if expiration:
        request["expiration-date"] = expiration
    duration = body.get("ValidityDuration", 0)
    if duration is None:
        duration = 0
    if type(duration) is not int or duration < 0:
        raise BadRequestError("ValidityDuration must be a non-negative integer")
    if duration > 0:
        request["validity-duration"] = duration
    return request


def creation_answer(answer):
    """Convert the service's {"token", "url"} into the plugin's {"Token", "Url"}."""
    if not isinstance(answer, dict):
        raise ServiceError("creation answer is not an object")
    token = answer.get("token")
    url = answer.get("url")
    if not isinstance(token, str) or not token or not isinstance(url, (str, type(None))):
        raise ServiceError("creation answer lacks a token")
    return {"Token": token, "Url": url or None}


def decode_answer(answer):
    """Convert the service's decode answer into the plugin's."""
    if not isinstance(answer, dict):
        raise ServiceError("decode answer is not an object")
    reply = {}
    for source_key, target_key in (
        ("redirect-url", "RedirectUrl"),
        ("error-code", "ErrorCode"),
        ("token-type", "TokenType"),
    ):
        value = answer.get(source_key)
        if value is not None and not isinstance(value, str):
            raise ServiceError(f"decode answer has a non-string {source_key}")
        if value:
            reply[target_key] = value
    dicom_ids, orthanc_ids = set(), set()
    resources = answer.get("resources")
    for resource in resources if isinstance(resources, list) else []:
        if not isinstance(resource, dict):
            continue
        for key, target in (("dicom-uid", dicom_ids), ("orthanc-id", orthanc_ids)):
            if isinstance(resource.get(key), str) and resource[key]:
                target.add(resource[key])
    # The plugin keeps them in std::set, hence sorted and without duplicates.
    reply["ResourcesDicomIds"] = sorted(dicom_ids)
    reply["ResourcesOrthancIds"] = sorted(orthanc_ids)
    return reply


def _send_json(output, payload):
    output.AnswerBuffer(json.dumps(payload), "application/json")


def _send_error(output, status, message):
    text = json.dumps({"Error": message})  # ASCII, so len() is the byte count
    output.SendHttpStatus(status, text, len(text))


class TokenRoutes:
    """The current-mode Orthanc routes PUT /auth/tokens/{type} and POST /auth/tokens/decode."""

    def __init__(self, settings, client):
        self._settings = settings
        self._client = client

    def create(self, output, uri, **request):
        if request.get("method") != "PUT":
            output.SendMethodNotAllowed("PUT")
            return
        self._answer(output, lambda body: self._create(request["groups"][0], body), request)

    def decode(self, output, uri, **request):
        if request.get("method") != "POST":
            output.SendMethodNotAllowed("POST")
            return
        self._answer(output, self._decode, request)

    def _create(self, token_type, body):
        service_body = creation_request_body(token_type, body, self._settings.server_id)
        url = join_uri(self._settings.creation_base_url, token_type)
        return creation_answer(self._client.call("PUT", url, service_body))

    def _decode(self, body):
        if not isinstance(body, dict):
            raise BadRequestError("a JSON object was expected")
        service_body = {
            "token-key": _optional_string(body.get("TokenKey"), "TokenKey"),
            "token-value": _optional_string(body.get("TokenValue"), "TokenValue"),
        }
        return decode_answer(self._client.call("POST", self._settings.decoder_url, service_body))

    @staticmethod
    def _answer(output, handler, request):
        try:
            try:
                body = json.loads(request.get("body") or b"")
            except ValueError:
                raise BadRequestError("a JSON payload was expected") from None
            _send_json(output, handler(body))
        except BadRequestError as exc:
            _send_error(output, 400, str(exc))
        except ServiceError as exc:
            orthanc.LogWarning(f"AuthEmulator: token service failure ({exc})")
            _send_error(output, 502, "token service failure")
        except Exception as exc:  # noqa: BLE001 - answer instead of Orthanc's bare 500
            orthanc.LogError(f"AuthEmulator: internal error ({_describe_error(exc)})")
            _send_error(output, 500, "internal error")


# --------------------------------------------------------------------------- registration


def install():
    """Read the configuration and register the filter and routes it asks for."""
    settings = load_settings(json.loads(orthanc.GetConfiguration()))
    client = WebServiceClient(settings)

    if settings.validation_url:
        hierarchy = ResourceHierarchy()

        def on_change(change_type, level, resource_id):
            if change_type == orthanc.ChangeType.DELETED:
                hierarchy.clear()

        orthanc.RegisterOnChangeCallback(on_change)
        orthanc.RegisterIncomingHttpRequestFilter(
            AuthorizationFilter(settings, client, UriMapper(settings, hierarchy))
        )

    if settings.mode == CURRENT:
        routes = TokenRoutes(settings, client)
        # Orthanc tries callbacks in registration order: decode must come first.
        if settings.decoder_url:
            orthanc.RegisterRestCallback("/auth/tokens/decode", routes.decode)
        if settings.creation_base_url:
            orthanc.RegisterRestCallback("/auth/tokens/(.*)", routes.create)

    orthanc.LogWarning(
        f"AuthEmulator: mode={settings.mode} filter={bool(settings.validation_url)}"
        f" decode={bool(settings.decoder_url)} create={bool(settings.creation_base_url)}"
        f" checked={','.join(sorted(settings.checked_levels))}"
        f" tokens={','.join(source.name for source in settings.tokens)}"
    )


install()
