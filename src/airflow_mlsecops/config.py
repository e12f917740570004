"""All settings in one place, read when they are needed (never at import time).

Every setting is an option of Airflow's ``[mlsecops]`` configuration section and has an
environment-variable twin (:data:`OPTIONS` lists them; ``docs/configuration.md`` explains each).
Where a value comes from, first match wins:

1. the MLflow Connection of the hook or operator (``mlflow_conn_id``, default ``mlflow_default``):
   only the store options ``tracking_uri``, ``registry_uri``, ``artifact_root``, ``mlflow_ui_url``;
2. Airflow's configuration, section ``[mlsecops]``: ``AIRFLOW__MLSECOPS__<OPTION>``, ``airflow.cfg``,
   and for sensitive options ``_cmd`` / ``_secret`` and the secrets backend (Airflow's own order);
3. the environment variable (``MLSECOPS_*``, ``MLFLOW_TRACKING_URI``);
4. the default, mostly below ``home`` (``./.mlsecops`` of the working directory).

An option with an empty value counts as unset. The registry URI, artifact root and MLflow UI URL
belong to one MLflow store: they are never taken from a source of lower precedence than the one
that named the tracking URI (a registry URI in the environment does not pair with a tracking
server named by a Connection).

:meth:`Settings.from_env` reads the environment only (the ``mlsecops`` CLI uses it: its flags set
environment variables, and loading Airflow's configuration would cost seconds).
:meth:`Settings.resolve` adds Airflow's configuration and a connection's values; the evidence
hook (:mod:`airflow_mlsecops.hooks.evidence`) uses it in every task. This module imports Airflow
only inside :func:`airflow_config_values`, and only when asked to.

The platform's settings cannot be changed from inside a process: :data:`PLATFORM_OPTIONS` (the
policy file, the trusted keys, the signing key, the ledger, ``home``) decide what is enforced and
whom a verifier trusts, so a DAG file that sets ``MLSECOPS_POLICY`` (or ``AIRFLOW__MLSECOPS__POLICY_FILE``,
``MLSECOPS_TRUSTED_KEYS``...) in ``os.environ`` must not change them. Their environment variables are
compared with the environment the process started with (:func:`platform_environment`: a copy taken
when this module is first imported; every Airflow process imports it with the cluster policy when
Airflow initialises, before any DAG file runs, and forked children inherit the copy); any
difference is a :class:`ConfigurationError` naming the variable, so every gate, the cluster policy
and the promotion fail closed. (Linux's ``/proc/self/environ`` is no help: Airflow's
``setproctitle`` overwrites that memory in its workers and task processes.) The ``mlsecops`` CLI and the demo set
some of these variables themselves from their flags, then call :func:`pin_platform_environment`.

Trust: the ``keys/`` folder of ``home`` is trusted for verification only when ``home`` was set
explicitly (``[mlsecops] home`` or ``MLSECOPS_HOME``); the ``./.mlsecops/keys`` of whatever
directory a verifier runs in is never trusted by default. A key is never logged; only its key id is.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow_mlsecops.exceptions import ConfigurationError, KeyLoadError

if TYPE_CHECKING:
    # Imported where keys are loaded: Airflow imports this module (through the provider info) in
    # every process, so it stays free of cryptography.
    from airflow_mlsecops.evidence.keys import SigningKey, VerifyingKey
    from airflow_mlsecops.evidence.signers import Signer

SIGNING_KEY_FILE = "signing-key.pem"
PUBLIC_KEY_FILE = "signing-key.pub.pem"

#: Airflow configuration section of this package.
SECTION = "mlsecops"


@dataclass(frozen=True)
class Option:
    """One setting: its ``[mlsecops]`` option name, its environment variable and what it means.

    :param sensitive: the value may hold a secret: Airflow masks it and accepts ``<option>_cmd`` /
        ``<option>_secret`` for it.
    """

    name: str
    env: str
    description: str
    default: str
    sensitive: bool = False
    example: str | None = None


#: Every setting, in the order ``docs/configuration.md`` and the provider's config section list them.
OPTIONS: tuple[Option, ...] = (
    Option(
        "home",
        "MLSECOPS_HOME",
        "Home of the embedded default: the MLflow SQLite store, the ledger and the signing key live below it. "
        "Its keys/ folder is trusted for verification only when this is set. Use an absolute path in Airflow.",
        "./.mlsecops (of the process's working directory)",
        example="/opt/airflow/mlsecops",
    ),
    Option(
        "tracking_uri",
        "MLFLOW_TRACKING_URI",
        "MLflow tracking URI of the evidence store (an MLflow Connection takes precedence).",
        "sqlite:///<home>/mlflow.db",
        sensitive=True,
        example="https://mlflow.example.com",
    ),
    Option(
        "registry_uri",
        "MLSECOPS_REGISTRY_URI",
        "MLflow model registry URI, if the registry is not the tracking store. MLflow's own MLFLOW_REGISTRY_URI is not "
        "read (mlflow.set_registry_uri() rewrites it inside a process).",
        "the tracking URI",
        sensitive=True,
    ),
    Option(
        "artifact_root",
        "MLSECOPS_ARTIFACT_ROOT",
        "Artifact root of experiments this package creates in a database-backed MLflow store used directly "
        "(an MLflow server chooses its own).",
        "<home>/mlartifacts",
    ),
    Option(
        "mlflow_ui_url",
        "MLSECOPS_MLFLOW_UI_URL",
        "Base URL of the MLflow UI for the task's evidence link and the link in approval requests.",
        "the tracking URI when it is http(s), else no link",
        example="https://mlflow.example.com",
    ),
    Option(
        "ledger_url",
        "MLSECOPS_LEDGER_URL",
        "SQLAlchemy URL of the evidence ledger.",
        "sqlite:///<home>/ledger.db",
        sensitive=True,
        example="postgresql+psycopg2://mlsecops@db/mlsecops",
    ),
    Option(
        "ledger_checkpoints",
        "MLSECOPS_LEDGER_CHECKPOINTS",
        "Where signed ledger checkpoints are written and read: a directory or s3://bucket/prefix. Verification "
        "checks the ledger against the newest trusted checkpoint there and walks the chain only from it.",
        "unset: no checkpoints; verification walks the whole chain",
        example="s3://mlsecops-checkpoints/prod",
    ),
    Option(
        "signing_key",
        "MLSECOPS_SIGNING_KEY",
        "The key that signs evidence (and models), as a reference: a PEM file path, env:VAR (a PEM private key in "
        "the variable VAR), or awskms:///<key id | key ARN | alias/NAME> (AWS KMS; the private key never leaves it).",
        "<home>/keys/signing-key.pem if that file exists",
        example="awskms:///alias/mlsecops-evidence",
    ),
    Option(
        "signing_key_pem",
        "MLSECOPS_SIGNING_KEY_PEM",
        "The PEM private key itself, e.g. from a secrets backend (signing_key_pem_secret); wins over signing_key.",
        "unset",
        sensitive=True,
    ),
    Option(
        "signing_key_password",
        "MLSECOPS_SIGNING_KEY_PASSWORD",
        "Password of an encrypted private key.",
        "unset",
        sensitive=True,
    ),
    Option(
        "trusted_keys",
        "MLSECOPS_TRUSTED_KEYS",
        "Trust anchors of the verifier: public key PEM files, directories whose *.pub.pem files are trusted, "
        "trust files (*.yaml, *.json: keys with validity windows and revocations) and key references "
        "(awskms:///...). In [mlsecops] separated by commas or os.pathsep; in the environment by os.pathsep. "
        "A listed path that does not exist is an error.",
        "<home>/keys when home is set, else none",
    ),
    Option(
        "policy_file",
        "MLSECOPS_POLICY",
        "The platform policy file (docs/policy.md). A configured but broken file fails closed.",
        "<home>/policy.yaml if that file exists, else no policy",
    ),
    Option(
        "spark_master",
        "MLSECOPS_SPARK_MASTER",
        "Spark master URL of the data gates' Spark engine (engine='spark'), e.g. spark://host:7077 or local[4]. "
        "An operator's spark_master argument and the Airflow connection mlsecops_spark (type spark) take precedence.",
        "local[2]",
        example="spark://spark-master:7077",
    ),
)
OPTION_NAMES: tuple[str, ...] = tuple(o.name for o in OPTIONS)
#: Options that decide what is enforced and whom a verifier trusts: fixed for the life of a process
#: (see the module's documentation). The MLflow store options are not among them: evidence in
#: another store still has to verify against the platform's ledger and keys.
PLATFORM_OPTIONS: tuple[str, ...] = (
    "home",
    "policy_file",
    "trusted_keys",
    "signing_key",
    "signing_key_pem",
    "signing_key_password",
    "ledger_url",
    "ledger_checkpoints",
)
_BY_NAME: Mapping[str, Option] = {o.name: o for o in OPTIONS}
#: Options that describe one MLflow store together with ``tracking_uri``.
STORE_OPTIONS: tuple[str, ...] = ("registry_uri", "artifact_root", "mlflow_ui_url")


def _clean(value: object) -> str | None:
    text = str(value).strip() if value is not None else ""
    return text or None


# ----------------------------------------------------------------------------- the platform's environment
#: The environment when this module was first imported: in Airflow, at initialisation (the cluster
#: policy imports it), before any DAG file runs.
_IMPORT_ENVIRONMENT: dict[str, str] = dict(os.environ)
_pinned_environment: dict[str, str] | None = None
_trust_live_environment = False  # tests only: every in-process change counts as the platform's


def platform_environment() -> Mapping[str, str]:
    """The environment the platform gave this process: the one it started with, or the one the
    ``mlsecops`` CLI or the demo pinned after applying their own flags."""
    if _trust_live_environment:
        return os.environ
    if _pinned_environment is not None:
        return _pinned_environment
    return _IMPORT_ENVIRONMENT


def pin_platform_environment(env: Mapping[str, str] | None = None) -> None:
    """Take ``env`` (default: ``os.environ`` as it is now) as the platform's environment from here on.

    For entry points that set the platform's variables themselves before any DAG code runs (the
    ``mlsecops`` CLI from its flags, the demo); never call it from a DAG file.
    """
    global _pinned_environment
    _pinned_environment = dict(os.environ if env is None else env)


def platform_variables(option: str) -> tuple[str, ...]:
    """Every environment variable that can set ``option``: its twin and Airflow's forms."""
    upper = f"AIRFLOW__{SECTION.upper()}__{option.upper()}"
    names = [_BY_NAME[option].env, upper]
    if _BY_NAME[option].sensitive:
        names.extend((f"{upper}_CMD", f"{upper}_SECRET"))
    return tuple(names)


def check_platform_environment(options: Sequence[str] = PLATFORM_OPTIONS) -> None:
    """Refuse when a variable of a platform setting differs from the platform's environment.

    :raises ConfigurationError: naming each changed variable (never its value: it may be a secret).
    """
    if _trust_live_environment:
        return
    reference = platform_environment()
    changed = [name for option in options for name in platform_variables(option) if os.environ.get(name) != reference.get(name)]
    if changed:
        raise ConfigurationError(
            f"{', '.join(changed)} changed inside this process after it started (e.g. by a DAG file); the platform's "
            "policy, keys and ledger come only from the environment and Airflow configuration the process was started "
            "with, so nothing is judged or signed until the change is removed"
        )


def restore_platform_environment(options: Sequence[str] = PLATFORM_OPTIONS) -> None:
    """Put every variable of the platform settings in ``os.environ`` back as the platform set it
    (``mlsecops policy check``, after noting the DAG file that changed them)."""
    reference = platform_environment()
    for option in options:
        for name in platform_variables(option):
            if name in reference:
                os.environ[name] = reference[name]
            else:
                os.environ.pop(name, None)


@dataclass(frozen=True)
class Layer:
    """One source of settings: values by option name, and how messages name where a value came from.

    :param kind: ``connection``, ``airflow`` or ``env``.
    :param values: option name -> value; empty values are dropped.
    :param name: the connection id, for a connection layer.
    """

    kind: str
    values: Mapping[str, str]
    name: str = ""

    def __post_init__(self) -> None:
        unknown = sorted(set(self.values) - set(OPTION_NAMES))
        if unknown:
            raise ConfigurationError(f"unknown mlsecops setting(s) {', '.join(unknown)}; known: {', '.join(OPTION_NAMES)}")
        cleaned = {k: v for k, v in ((k, _clean(v)) for k, v in self.values.items()) if v is not None}
        object.__setattr__(self, "values", cleaned)

    def describe(self, option: str) -> str:
        """Where ``option`` comes from in this layer, e.g. ``[mlsecops] ledger_url`` or ``MLSECOPS_LEDGER_URL``."""
        if self.kind == "connection":
            return f"connection {self.name!r}"
        if self.kind == "airflow":
            return f"[{SECTION}] {option}"
        return _BY_NAME[option].env

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Layer:
        """The ``MLSECOPS_*`` / ``MLFLOW_TRACKING_URI`` variables of ``env`` (default: ``os.environ``)."""
        env = os.environ if env is None else env
        return cls("env", {o.name: env.get(o.env, "") for o in OPTIONS})


def airflow_config_loaded() -> bool:
    """Whether this process has Airflow's configuration loaded (every Airflow process has; the CLI has not)."""
    return "airflow.sdk.configuration" in sys.modules or "airflow.configuration" in sys.modules


def _airflow_conf() -> Any:
    """Airflow's configuration parser: the Task SDK's (what providers read in tasks) or the core's."""
    module: Any = sys.modules.get("airflow.sdk.configuration") or sys.modules.get("airflow.configuration")
    if module is None:
        try:
            import airflow.sdk.configuration as module
        except ImportError:  # an Airflow without the Task SDK
            import airflow.configuration as module
    return module.conf


def airflow_config_values(options: Sequence[str] = OPTION_NAMES) -> dict[str, str]:
    """The ``[mlsecops]`` options set in Airflow's configuration (unset and empty ones left out).

    Goes through Airflow's own lookup, so ``AIRFLOW__MLSECOPS__<OPTION>``, ``airflow.cfg`` and, for
    sensitive options, ``_cmd`` / ``_secret`` and the secrets backend all work. Imports Airflow's
    configuration if this process has not loaded it yet (1-4 s).

    :raises ConfigurationError: Airflow cannot produce a value (a failing ``_cmd``, an unreachable
        secrets backend): the caller must not fall back to another source silently.
    """
    conf = _airflow_conf()
    values: dict[str, str] = {}
    for name in options:
        try:
            value = conf.get(SECTION, name, fallback="")
        except Exception as exc:  # Airflow's config errors are untyped here; fail closed, never fall back
            raise ConfigurationError(f"Airflow option [{SECTION}] {name} cannot be read: {exc}") from exc
        if _clean(value) is not None:
            values[name] = str(value).strip()
    return values


def airflow_layer(airflow_config: bool | None = None) -> Layer | None:
    """The ``[mlsecops]`` layer: always if ``airflow_config`` is true, never if false, and with
    ``None`` only when Airflow's configuration is already loaded in this process."""
    if airflow_config is False or (airflow_config is None and not airflow_config_loaded()):
        return None
    return Layer("airflow", airflow_config_values())


#: Schemes of key references that are not file paths (``scheme:...``). A reference with another
#: ``word:`` prefix is refused by the loader rather than read as a file.
KEY_REFERENCE_SCHEMES: tuple[str, ...] = ("env", "awskms")


def is_key_reference(text: str) -> bool:
    """Whether ``text`` names a key by a scheme (``env:VAR``, ``awskms:///...``) rather than a path."""
    scheme, sep, _ = text.partition(":")
    return bool(sep) and scheme.lower() in KEY_REFERENCE_SCHEMES


def _expand_reference(text: str) -> str:
    text = text.strip()
    return text if is_key_reference(text) else str(Path(text).expanduser())


def _expand_location(text: str) -> str:
    text = text.strip()
    return text if "://" in text else str(Path(text).expanduser().absolute())


def split_references(text: str, separators: Sequence[str]) -> list[str]:
    """Split a list of key references on ``separators`` without cutting a reference's own scheme
    (``awskms:///alias/k`` stays whole even when ``:`` separates the list)."""
    parts = [text]
    for separator in separators:
        parts = [piece for part in parts for piece in part.split(separator)]
    joined: list[str] = []
    pending = ""
    for part in parts:
        if pending:
            joined.append(f"{pending}:{part}")
            pending = ""
        elif ":" in separators and part.strip().lower() in KEY_REFERENCE_SCHEMES:
            pending = part.strip()
        else:
            joined.append(part)
    if pending:
        joined.append(pending)
    return [p.strip() for p in joined if p.strip()]


@dataclass(frozen=True)
class Settings:
    """The resolved settings of one process or hook (build them with :meth:`from_env` or :meth:`resolve`).

    Secrets (``signing_key_pem``, ``signing_key_password``) are kept out of ``repr``.
    """

    home: Path
    tracking_uri: str
    ledger_url: str
    artifact_root: Path
    #: The signing key's reference (a PEM path, ``env:VAR``, ``awskms:///...``), or None.
    signing_key_ref: str | None
    signing_key_pem_set: bool
    #: The trust anchors' references (paths of PEM files, directories, trust files; ``awskms:///...``).
    trusted_key_refs: tuple[str, ...]
    #: What configured the trusted keys, e.g. ``MLSECOPS_TRUSTED_KEYS``, ``[mlsecops] trusted_keys``,
    #: ``MLSECOPS_HOME``, ``[mlsecops] home``; "" when nothing did (then none are trusted).
    trust_source: str = ""
    #: MLflow model registry URI; empty means the tracking URI.
    registry_uri_set: str = ""
    #: Base URL of the MLflow UI; empty: no link.
    mlflow_ui_url: str = ""
    #: The configured policy file (None: the default ``<home>/policy.yaml`` if it exists).
    policy_file: Path | None = None
    #: Where each configured value came from, e.g. ``("ledger_url", "[mlsecops] ledger_url")``.
    sources: tuple[tuple[str, str], ...] = field(default=(), compare=False)
    signing_key_pem: str | None = field(default=None, repr=False, compare=False)
    signing_key_password: str | None = field(default=None, repr=False, compare=False)
    #: Where signed ledger checkpoints live (a directory or ``s3://bucket/prefix``), or None.
    ledger_checkpoints: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """The settings of the environment alone (no Airflow import): what the ``mlsecops`` CLI uses.

        :raises ConfigurationError: reading ``os.environ`` (``env`` None) and a platform setting was
            changed inside the process (:func:`check_platform_environment`).
        """
        if env is None:
            check_platform_environment()
        return cls.from_layers([Layer.from_env(env)])

    @classmethod
    def resolve(
        cls,
        connection: Mapping[str, str] | None = None,
        *,
        connection_name: str = "",
        airflow_config: bool | None = None,
        env: Mapping[str, str] | None = None,
    ) -> Settings:
        """The settings of an Airflow process: ``connection`` > ``[mlsecops]`` > environment > defaults.

        :param connection: store options from an MLflow Connection (see :mod:`airflow_mlsecops.hooks.evidence`).
        :param connection_name: its conn id, for messages and :attr:`sources`.
        :param airflow_config: read Airflow's ``[mlsecops]`` section: ``True`` always (importing
            Airflow's configuration if needed), ``False`` never, ``None`` when it is already loaded.
        :param env: the environment (default ``os.environ``).
        :raises ConfigurationError: a source cannot be read, or (reading ``os.environ``) a platform
            setting was changed inside the process (:func:`check_platform_environment`).
        """
        if env is None:
            check_platform_environment()
        layers: list[Layer] = []
        if connection:
            layers.append(Layer("connection", connection, connection_name))
        from_airflow = airflow_layer(airflow_config)
        if from_airflow is not None:
            layers.append(from_airflow)
        layers.append(Layer.from_env(env))
        return cls.from_layers(layers)

    @classmethod
    def from_layers(cls, layers: Sequence[Layer]) -> Settings:
        """Settings from ``layers``, the first of which has the highest precedence."""
        sources: dict[str, str] = {}

        def pick(name: str, lowest: int | None = None) -> tuple[str | None, int | None]:
            for rank, layer in enumerate(layers):
                if lowest is not None and rank > lowest:
                    break
                if name in layer.values:
                    sources[name] = layer.describe(name)
                    return layer.values[name], rank
            return None, None

        home_set, _ = pick("home")
        home = Path(home_set or ".mlsecops").expanduser().absolute()
        keys_dir = home / "keys"
        tracking, tracking_rank = pick("tracking_uri")
        # The store's other options never come from below the source that named the tracking URI.
        registry, artifact_root, ui_url = (pick(name, tracking_rank)[0] for name in STORE_OPTIONS)
        tracking_uri = tracking or f"sqlite:///{home / 'mlflow.db'}"
        if not ui_url and tracking_uri.startswith(("http://", "https://")):
            ui_url = tracking_uri
        ledger, _ = pick("ledger_url")
        checkpoints, _ = pick("ledger_checkpoints")
        signing, _ = pick("signing_key")
        pem, _ = pick("signing_key_pem")
        password, _ = pick("signing_key_password")
        trusted, _ = pick("trusted_keys")
        policy, _ = pick("policy_file")
        default_key = keys_dir / SIGNING_KEY_FILE
        if trusted:
            separators = (os.pathsep,) if sources["trusted_keys"] == "MLSECOPS_TRUSTED_KEYS" else (os.pathsep, ",")
            trusted_refs: tuple[str, ...] = tuple(_expand_reference(r) for r in split_references(trusted, separators))
            trust_source = sources["trusted_keys"]
        elif home_set:
            trusted_refs, trust_source = (str(keys_dir),), sources["home"]
        else:
            # Never the working directory's ./.mlsecops/keys: a verifier started in a directory
            # someone else prepared would trust their key.
            trusted_refs, trust_source = (), ""
        return cls(
            home=home,
            tracking_uri=tracking_uri,
            ledger_url=ledger or f"sqlite:///{home / 'ledger.db'}",
            artifact_root=Path(artifact_root or home / "mlartifacts").expanduser().absolute(),
            signing_key_ref=_expand_reference(signing) if signing else (str(default_key) if default_key.exists() else None),
            signing_key_pem_set=pem is not None,
            trusted_key_refs=trusted_refs,
            trust_source=trust_source,
            registry_uri_set=registry or "",
            mlflow_ui_url=ui_url or "",
            policy_file=Path(policy).expanduser() if policy else None,
            sources=tuple(sorted(sources.items())),
            signing_key_pem=pem,
            signing_key_password=password,
            ledger_checkpoints=_expand_location(checkpoints) if checkpoints else None,
        )

    @property
    def registry_uri(self) -> str:
        return self.registry_uri_set or self.tracking_uri

    @property
    def keys_dir(self) -> Path:
        return self.home / "keys"

    def source_of(self, option: str) -> str:
        """Where ``option`` was set (``connection 'x'``, ``[mlsecops] x``, ``MLSECOPS_X``), or ``default``."""
        return dict(self.sources).get(option, "default")

    @property
    def signing_key_path(self) -> Path | None:
        """The signing key's file, when its reference is a path (None for ``env:`` and KMS references)."""
        if self.signing_key_ref is None or is_key_reference(self.signing_key_ref):
            return None
        return Path(self.signing_key_ref)

    @property
    def signing_key_configured(self) -> bool:
        return self.signing_key_ref is not None or self.signing_key_pem_set

    @property
    def trusted_key_paths(self) -> tuple[Path, ...]:
        """The trust anchors that are paths (files, directories, trust files)."""
        return tuple(Path(r) for r in self.trusted_key_refs if not is_key_reference(r))

    def load_signing_key(self) -> Signer:
        """The configured signer (a PEM key, or a reference to a key held elsewhere, e.g. AWS KMS);
        a clear :class:`KeyLoadError` if there is none or it cannot be reached."""
        from airflow_mlsecops.evidence.signers import load_signer, signer_from_pem

        password = self.signing_key_password.encode("utf-8") if self.signing_key_password else None
        if self.signing_key_pem is not None:
            return signer_from_pem(
                self.signing_key_pem.encode("utf-8"), password=password, origin=self.source_of("signing_key_pem")
            )
        if self.signing_key_ref is None:
            raise KeyLoadError(
                "no signing key is configured: set [mlsecops] signing_key or MLSECOPS_SIGNING_KEY to a PEM private key "
                "or a key reference (awskms:///alias/NAME), or run `mlsecops keygen` to create "
                f"{self.keys_dir / SIGNING_KEY_FILE}"
            )
        return load_signer(self.signing_key_ref, password=password, origin=self.source_of("signing_key"))

    def load_trusted_keys(self) -> dict[str, VerifyingKey]:
        """The trusted public keys, keyed by key id, each with its ``origin`` (the file or reference,
        and the setting that named it) and its validity. Empty when nothing is configured:
        verification then fails."""
        from airflow_mlsecops.evidence.trust import load_trust_anchors

        return load_trust_anchors(self.trusted_key_refs, source=self.trust_source, explicit="trusted_keys" in dict(self.sources))

    def generate_key_pair(self, key_type: str = "ecdsa-p256", password: bytes | None = None) -> SigningKey:
        from airflow_mlsecops.evidence.keys import SigningKey

        key = SigningKey.generate(key_type)
        key.write_pair(self.keys_dir / SIGNING_KEY_FILE, self.keys_dir / PUBLIC_KEY_FILE, password=password)
        return key


def telemetry_off() -> None:
    """Stop MLflow and Evidently from calling home (set wherever this package starts them)."""
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("DO_NOT_TRACK", "true")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
