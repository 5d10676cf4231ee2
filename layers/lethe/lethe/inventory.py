"""The data map: which datasets hold personal data and how to find, export, erase and retain them.

The file is validated at load. The layer ships it twice: as written (inventory.yaml) and compiled
(inventory.pickle, the validated inventory, written by `python -m lethe.inventory` when the layer is
built); a function loads the compiled form, which needs neither a YAML parser nor the validators, so
no cold start builds them. A bad file raises InventoryError naming the dataset and field at fault, at
load or when the layer is built, and nothing runs. Tables named here need not exist yet: a missing
table is reported when a task first touches it.
"""

from __future__ import annotations

import io
import pickle  # nosec B403 - only the layer's own compiled inventory, through _CompiledInventory's allowlist
import re
import sys
from enum import StrEnum
from functools import cache, lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import VERSION as PYDANTIC_VERSION
from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    field_validator,
    model_validator,
)

from lethe.durations import Duration
from lethe.errors import InventoryError

_NAME = r"^[a-z][a-z0-9_]{0,62}$"
_CATEGORY = r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$"


class EraseStrategy(StrEnum):
    remove = "remove"
    redact = "redact"
    pseudonymize = "pseudonymize"
    random = "random"
    truncate_ip = "truncate_ip"
    coarsen_date = "coarsen_date"


class Action(StrEnum):
    delete = "delete"
    anonymize = "anonymize"
    isolate = "isolate"


class Store(StrEnum):
    """Where a dataset lives (DESIGN.md, "Stores")."""

    dynamodb = "dynamodb"
    s3 = "s3"
    manual = "manual"


class ObjectFormat(StrEnum):
    """How the objects of an S3 dataset hold rows: one per line, per CSV row, or per Parquet row."""

    jsonl = "jsonl"
    csv = "csv"
    parquet = "parquet"


class _Strict(BaseModel):
    # Validators are built on first validation: a function loads the compiled inventory, which needs none.
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


class FieldSpec(_Strict):
    category: Annotated[str, Field(pattern=_CATEGORY, description="Data category, e.g. user.contact.email")]
    erase: EraseStrategy
    rectifiable: Annotated[bool, Field(description="The subject may correct this field")] = False


EMAIL = "email"
# The format checks an identity may carry; a linked value that fails its check is not followed.
IDENTITY_FORMATS = {"e164": re.compile(r"^\+[1-9][0-9]{1,14}$")}


def identity_label(identity: str) -> str:
    """How the subject is told which identity led to a dataset: "your account id"."""
    return "your email address" if identity == EMAIL else "your " + identity.replace("_", " ")


class IdentitySpec(_Strict):
    """A kind of identifier a subject may be found by, besides the email (always known)."""

    format: Annotated[Literal["e164"] | None, Field(description="A check every value must pass")] = None

    def accepts(self, value: str | int | float) -> bool:
        return self.format is None or bool(IDENTITY_FORMATS[self.format].match(str(value)))


class HashedLookup(_Strict):
    """An attribute holding the SHA-256 (hex) of the normalized subject value, with a GSI on it, so that
    a controller's hashed identity (OpenDSR `identity_format: sha256`) is found by Query."""

    attribute: Annotated[str, Field(min_length=1)]
    index: Annotated[str, Field(min_length=1)]


class SubjectLookup(_Strict):
    identity: Annotated[str, Field(pattern=_NAME, description="The identity this dataset is found by")] = EMAIL
    attribute: Annotated[str, Field(min_length=1)]
    index: Annotated[str | None, Field(min_length=1)] = None
    hashed: Annotated[
        HashedLookup | None, Field(description="How a SHA-256 of the subject value finds items (optional)")
    ] = None


class TableKey(_Strict):
    hash: Annotated[str, Field(min_length=1)]
    range: Annotated[str | None, Field(min_length=1)] = None

    @property
    def attributes(self) -> tuple[str, ...]:
        return (self.hash,) if self.range is None else (self.hash, self.range)


class Retention(_Strict):
    since: Annotated[str, Field(min_length=1, description="Attribute holding the start (ISO 8601 or epoch s)")]
    after: Duration
    action: Action
    index: Annotated[str | None, Field(min_length=1, description="Sparse GSI on the expiry bucket")] = None
    shards: Annotated[int, Field(ge=1, le=1000, description="Expiry buckets per day in the index")] = 1
    basis: Annotated[str | None, Field(description="Why this period, e.g. a statute")] = None

    @field_validator("after", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> Duration:
        if isinstance(value, Duration):
            return value
        if not isinstance(value, str):
            raise ValueError("must be an ISO 8601 duration string such as P30D")
        return Duration.parse(value)


class Transfer(_Strict):
    """A transfer of the dataset's personal data to a third country (GDPR Art. 30(1)(e), Art. 44-49)."""

    to: Annotated[str, Field(min_length=1, description="The country, and who receives the data there")]
    safeguard: Annotated[str, Field(min_length=1, description="The legal basis: adequacy, DPF, SCCs, ...")]


# ------------------------------------------------------------------ recipients (GDPR Art. 19)

_SECRET_REF = r"^[A-Za-z0-9/_+=.@:-]{1,512}$"  # noqa: S105 - the pattern of a secret's name, not a secret
_LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]")


class EmailNotice(_Strict):
    """Tell the recipient by email."""

    email: Annotated[str, Field(pattern=r"^[^@\s<>,;]+@[^@\s<>,;]+\.[^@\s<>,;]+$", max_length=254)]


class WebhookNotice(_Strict):
    """Tell the recipient by a signed JSON POST. `secret` names a Secrets Manager secret (a logical id
    in template.yaml or a name/ARN), never the key itself: the inventory holds no secret in clear."""

    webhook: Annotated[str, Field(min_length=8, max_length=2048)]
    secret: Annotated[str, Field(pattern=_SECRET_REF, description="Secrets Manager name, ARN or logical id")]

    @field_validator("webhook")
    @classmethod
    def _https(cls, value: str) -> str:
        from urllib.parse import urlsplit

        parts = urlsplit(value)
        if not parts.hostname:
            raise ValueError("must be an absolute URL such as https://hooks.example.com/lethe")
        local = parts.netloc.rsplit(":", 1)[0] in _LOOPBACK_HOSTS or parts.hostname in _LOOPBACK_HOSTS
        if parts.scheme != "https" and not (parts.scheme == "http" and local):
            # A notice names a request and a subject reference: it travels encrypted, except to this machine.
            raise ValueError("must be an https:// URL (http:// only for 127.0.0.1 or localhost)")
        return value


def _channel(value: Any) -> str:
    """Which way a recipient is told: a webhook when one is named, else an email (errors then name it)."""
    if isinstance(value, dict) and "webhook" in value:
        return "webhook"
    return "webhook" if isinstance(value, WebhookNotice) else "email"


Notice = Annotated[
    Annotated[EmailNotice, Tag("email")] | Annotated[WebhookNotice, Tag("webhook")], Discriminator(_channel)
]


class Recipient(_Strict):
    name: Annotated[str, Field(min_length=1, max_length=200)]
    notify: Notice | None = None

    @model_validator(mode="before")
    @classmethod
    def _one_channel(cls, data: Any) -> Any:
        notify = data.get("notify") if isinstance(data, dict) else None
        if isinstance(notify, dict) and "email" in notify and "webhook" in notify:
            raise ValueError("notify: give either email or webhook (with secret), not both")
        return data


def _recipient(value: Any) -> Any:
    return {"name": value} if isinstance(value, str) else value


# ------------------------------------------------------------------ datasets


class Dataset(_Strict):
    name: str = ""
    # dynamodb: a table Lethe reads and writes; s3: rows inside objects under a prefix; manual: a system
    # no API reaches, where a person (the owner) does the work from an emailed task (lethe.logic.manual_tasks).
    store: Annotated[Store, Field(description="dynamodb (a table), s3 (rows inside objects) or manual (a person)")] = (
        Store.dynamodb
    )
    table: Annotated[str, Field(description="Logical id in template.yaml, or a physical name (store: dynamodb)")] = ""
    bucket: Annotated[
        str | None, Field(min_length=1, description="Logical id in template.yaml, or a physical name (store: s3)")
    ] = None
    prefix: Annotated[str, Field(max_length=1024, description="Key prefix the dataset's objects live under")] = ""
    format: Annotated[ObjectFormat | None, Field(description="How the objects hold rows (store: s3)")] = None
    owner: Annotated[
        str | None,
        Field(pattern=r"^[^@\s<>,;]+@[^@\s<>,;]+\.[^@\s<>,;]+$", max_length=254, description="store: manual"),
    ] = None
    instructions: Annotated[
        str | None, Field(min_length=1, max_length=2000, description="store: manual: what the owner does")
    ] = None
    description: Annotated[str, Field(min_length=1)]
    controller: Literal["self", "customer"]
    customer: Annotated[
        str | None, Field(description="Attribute naming the customer the data is held for (controller: customer)")
    ] = None
    subject: SubjectLookup
    key: Annotated[
        TableKey | None, Field(description="Primary key; when omitted it is read from DescribeTable once")
    ] = None
    fields: Annotated[dict[str, FieldSpec], Field(min_length=1)]
    purposes: Annotated[list[Annotated[str, Field(pattern=_NAME)]], Field(min_length=1)]
    recipients: list[Recipient] = Field(default_factory=list)
    retention: Retention | None = None
    on_erasure: Action
    transfers: Annotated[
        list[Transfer], Field(description="Transfers outside the EEA, for the record of processing")
    ] = Field(default_factory=list)
    links: Annotated[
        dict[Annotated[str, Field(pattern=_NAME)], Annotated[str, Field(min_length=1)]],
        Field(description="identity -> attribute: this item's attribute is the subject's value of that identity"),
    ] = Field(default_factory=dict)

    @field_validator("recipients", mode="before")
    @classmethod
    def _plain_recipients(cls, value: Any) -> Any:
        return [_recipient(v) for v in value] if isinstance(value, list) else value

    @model_validator(mode="after")
    def _manual_store(self) -> Dataset:
        if self.store is Store.manual:
            for attribute in ("owner", "instructions"):
                if getattr(self, attribute) is None:
                    raise InventoryError("required for store: manual", dataset=self.name, field=attribute)
            for attribute in ("table", "key", "retention"):
                if getattr(self, attribute):
                    raise InventoryError(
                        "not allowed for store: manual (Lethe cannot reach it)", dataset=self.name, field=attribute
                    )
            if self.links:
                raise InventoryError("not allowed for store: manual", dataset=self.name, field="links")
        return self

    @property
    def is_manual(self) -> bool:
        return self.store is Store.manual

    @property
    def recipient_names(self) -> list[str]:
        return [r.name for r in self.recipients]

    @property
    def notified_recipients(self) -> list[Recipient]:
        return [r for r in self.recipients if r.notify is not None]

    @model_validator(mode="after")
    def _store(self) -> Dataset:
        if self.store is Store.manual:
            return self  # checked by _manual_store
        if self.store is Store.dynamodb:
            if not self.table:
                raise InventoryError("required field is missing", dataset=self.name, field="table")
            for name in ("bucket", "format"):
                if getattr(self, name) is not None:
                    raise InventoryError("only for store: s3", dataset=self.name, field=name)
            return self
        for name in ("bucket", "format"):
            if getattr(self, name) is None:
                raise InventoryError("required field is missing (store: s3)", dataset=self.name, field=name)
        for name in ("table", "key"):
            if getattr(self, name):
                raise InventoryError("only for store: dynamodb", dataset=self.name, field=name)
        if self.subject.index is not None:
            raise InventoryError(
                "an S3 dataset is found through Lethe's own subject index; name no table index",
                dataset=self.name,
                field="subject.index",
            )
        if self.retention is not None and (self.retention.index or self.retention.action is Action.isolate):
            raise InventoryError(
                "an S3 dataset's rows are deleted or anonymized in place: no expiry index, no isolate",
                dataset=self.name,
                field="retention",
            )
        if self.on_erasure is Action.isolate:
            raise InventoryError(
                "rows inside objects are deleted or anonymized, not isolated", dataset=self.name, field="on_erasure"
            )
        return self

    @property
    def in_s3(self) -> bool:
        return self.store is Store.s3

    @model_validator(mode="after")
    def _safe(self) -> Dataset:
        if self.store is not Store.dynamodb:
            # rows in objects have no table key (Lethe's own index finds the subject); a person searches
            # a manual dataset
            return self
        if self.subject.index is None and self.key is not None and self.subject.attribute != self.key.hash:
            # Without an index, finding a subject's items would need a Scan.
            raise ValueError("subject.index: required unless subject.attribute is the table's hash key")
        if self.subject.identity != EMAIL and self.subject.index is None and self.key is None:
            # A linked identity is looked up by Query only: the key must be declared to prove it.
            raise InventoryError(
                f"a dataset found through {self.subject.identity} needs an index on "
                f"{self.subject.attribute}, or a declared key whose hash is {self.subject.attribute}",
                dataset=self.name,
                field="subject.index",
            )
        declared = set(self.fields) | {self.subject.attribute} | set(self.key.attributes if self.key else ())
        for identity, attribute in sorted(self.links.items()):
            if attribute not in declared:
                raise InventoryError(
                    f"attribute {attribute!r} is not declared as a field or the key",
                    dataset=self.name,
                    field=f"links.{identity}",
                )
        if self.key is not None:
            keys = set(self.key.attributes)
        elif self.subject.index is None:
            keys = {self.subject.attribute}
        else:
            keys = set()
        anonymizes = self.on_erasure is Action.anonymize or (
            self.retention is not None and self.retention.action is Action.anonymize
        )
        if anonymizes:
            touched = sorted(keys & set(self.fields))
            if touched:
                # A key attribute cannot be rewritten in place; anonymizing would have to delete.
                raise ValueError(
                    f"fields.{touched[0]}: key attributes cannot be anonymized in place; "
                    "use delete or isolate, or drop the field"
                )
        return self

    @property
    def subject_is_key(self) -> bool:
        return self.subject.index is None

    @property
    def link_attributes(self) -> frozenset[str]:
        """The attributes that say who the subject is, besides the subject attribute (never rectified)."""
        return frozenset(self.links.values())

    def identifying_attributes(self) -> frozenset[str]:
        """Attributes that say whose an item is: how the subject is found, the declared key, the customer
        the item is held for. Rectifying one would hand the item to someone else (DESIGN.md: identities
        and links), so none is ever corrected. Attributes a dataset adds to find people go here too."""
        found = {self.subject.attribute}
        if self.key is not None:
            found.update(self.key.attributes)
        if self.customer is not None:
            found.add(self.customer)
        found.update(self.link_attributes)
        return frozenset(found)


class Inventory(_Strict):
    version: Literal[1]
    identities: Annotated[
        dict[Annotated[str, Field(pattern=_NAME)], IdentitySpec],
        Field(description="Identities besides the email (always known) that a subject may be found by"),
    ] = Field(default_factory=dict)
    datasets: Annotated[dict[Annotated[str, Field(pattern=_NAME)], Dataset], Field(min_length=1)]

    @model_validator(mode="after")
    def _identities_resolve(self) -> Inventory:
        """Every identity a dataset is found by is known and can be learned: from the request (the
        email) or from another dataset's links. Cycles are fine: a value is followed once."""
        known = {EMAIL, *self.identities}
        supplied = {EMAIL} | {identity for d in self.datasets.values() for identity in d.links}
        for name, dataset in self.datasets.items():
            if dataset.subject.identity not in known:
                raise InventoryError(
                    f"unknown identity {dataset.subject.identity!r} (declare it under identities)",
                    dataset=name,
                    field="subject.identity",
                )
            if dataset.subject.identity not in supplied:
                raise InventoryError(
                    f"nothing can supply identity {dataset.subject.identity!r}: no dataset links to it "
                    "and requests carry only the email",
                    dataset=name,
                    field="subject.identity",
                )
            for identity in sorted(dataset.links):
                if identity not in known:
                    raise InventoryError(
                        f"unknown identity {identity!r} (declare it under identities)",
                        dataset=name,
                        field=f"links.{identity}",
                    )
        for identity in sorted(self.identities):
            if identity not in supplied:
                raise InventoryError(
                    "nothing can supply this identity: no dataset links to it and requests carry only the email",
                    field=f"identities.{identity}",
                )
        return self

    def identity(self, name: str) -> IdentitySpec:
        return self.identities.get(name, IdentitySpec())

    @model_validator(mode="before")
    @classmethod
    def _names(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("datasets"), dict):
            data = dict(data)
            data["datasets"] = {
                name: {**spec, "name": name} if isinstance(spec, dict) else spec
                for name, spec in data["datasets"].items()
            }
        return data

    def dataset(self, name: str) -> Dataset:
        return self.datasets[name]

    def identifying_attributes(self) -> frozenset[str]:
        """Every attribute that identifies in some dataset: never corrected in any."""
        return frozenset().union(*(d.identifying_attributes() for d in self.datasets.values()))

    def correctable_fields(self, dataset: str | None = None) -> dict[str, frozenset[str]]:
        """The fields a subject may correct (of one dataset, or of all), each with the categories it
        holds: marked `rectifiable` and identifying in no dataset."""
        blocked = self.identifying_attributes()
        chosen = [self.datasets[dataset]] if dataset is not None else list(self.datasets.values())
        fields: dict[str, set[str]] = {}
        for spec in chosen:
            for name, field in spec.fields.items():
                if field.rectifiable and name not in blocked:
                    fields.setdefault(name, set()).add(field.category)
        return {name: frozenset(categories) for name, categories in sorted(fields.items())}


@cache
def _unique_key_loader() -> Any:
    """A YAML SafeLoader that refuses a duplicated key, which would silently overwrite in YAML and in a
    data map hides a mistake. Built on first use: a function loading the parsed JSON never imports YAML."""
    import yaml

    class UniqueKeyLoader(yaml.SafeLoader):
        pass

    def mapping(loader: UniqueKeyLoader, node: yaml.MappingNode) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = loader.construct_object(key_node)
            if key in seen:
                raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
            seen.add(key)
        return loader.construct_mapping(node)

    UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, mapping)
    return UniqueKeyLoader


def _locate(loc: tuple[int | str, ...]) -> tuple[str | None, str | None]:
    parts = [str(p) for p in loc]
    for at in range(len(parts) - 2):
        if parts[at] == "notify" and parts[at + 1] in ("email", "webhook"):
            del parts[at + 1]  # the channel's tag (lethe.inventory.Notice), not a field of the file
            break
    if len(parts) >= 2 and parts[0] == "datasets":
        return parts[1], ".".join(parts[2:]) or None
    return None, ".".join(parts) or None


def _read_yaml(text: str, *, source: str) -> Any:
    import yaml

    try:
        return yaml.load(text, Loader=_unique_key_loader())  # noqa: S506  # nosec B506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise InventoryError(f"{source} is not valid YAML{where}: {problem}") from exc


def _validated(raw: Any, *, source: str) -> Inventory:
    if not isinstance(raw, dict):
        raise InventoryError(f"{source} must be a mapping with 'version' and 'datasets'")
    try:
        return Inventory.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        dataset, field = _locate(tuple(first["loc"]))
        message = first["msg"].removeprefix("Value error, ")
        if first["type"] == "extra_forbidden":
            message = "unknown field (check the spelling against the inventory contract)"
        elif first["type"] == "missing":
            message = "required field is missing"
        raise InventoryError(message, dataset=dataset, field=field) from exc


def parse_inventory(text: str, *, source: str = "inventory") -> Inventory:
    return _validated(_read_yaml(text, source=source), source=source)


def load_inventory(path: Path | str) -> Inventory:
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InventoryError(f"cannot read inventory file {path}: {exc.strerror}") from exc
    if path.suffix == ".pickle":
        return parse_compiled_inventory(data, source=str(path))
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InventoryError(f"{path} is not UTF-8 text: {exc.reason}") from exc
    return parse_inventory(text, source=str(path))


@lru_cache(maxsize=4)
def cached_inventory(path: str) -> Inventory:
    return load_inventory(path)


def get_inventory() -> Inventory:
    """The inventory named by settings (LETHE_INVENTORY), loaded once per cold start."""
    from lethe.settings import get_settings

    return cached_inventory(str(get_settings().inventory))


# ---- The compiled form the layer ships (inventory.pickle), and the build step that writes it.

# What a compiled inventory may name: the inventory's own models and enums, and Duration. Anything else
# in the file (a callable a tampered pickle would run) is refused before it is looked up.
_COMPILED_FORMAT = 1
_COMPILED_NAMES = {
    ("lethe.durations", "Duration"),
    *(
        (__name__, name)
        for name, value in list(globals().items())
        if isinstance(value, type) and issubclass(value, BaseModel | StrEnum) and value.__module__ == __name__
    ),
}


class _CompiledInventory(pickle.Unpickler):  # nosec B301 - find_class admits only _COMPILED_NAMES
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _COMPILED_NAMES:
            raise pickle.UnpicklingError(f"{module}.{name} is not part of an inventory")
        return super().find_class(module, name)


def parse_compiled_inventory(data: bytes, *, source: str = "inventory") -> Inventory:
    """The inventory from its compiled form, as validated when the layer was built. The form is tied to
    the pydantic release that wrote it: another release is refused, naming both, rather than misread."""
    try:
        loaded = _CompiledInventory(io.BytesIO(data)).load()
    except Exception as exc:  # a truncated, foreign or tampered file: any unpickling error
        raise InventoryError(f"{source} is not a compiled inventory: {exc}") from exc
    if not (isinstance(loaded, tuple) and len(loaded) == 3 and loaded[0] == _COMPILED_FORMAT):
        raise InventoryError(f"{source} is not a compiled inventory (format {_COMPILED_FORMAT})")
    _, built_with, inventory = loaded
    if built_with != PYDANTIC_VERSION:
        raise InventoryError(
            f"{source} was compiled with pydantic {built_with} and this runtime has {PYDANTIC_VERSION}: "
            "build the layer again"
        )
    if not isinstance(inventory, Inventory):
        raise InventoryError(f"{source} does not hold an inventory")
    return inventory


def compile_inventory(text: str, *, source: str = "inventory") -> bytes:
    """The compiled form of an inventory file: refused as parse_inventory refuses it, so a bad data map
    fails the build; the validated inventory otherwise, pickled with the pydantic release that built it."""
    inventory = parse_inventory(text, source=source)
    return pickle.dumps((_COMPILED_FORMAT, PYDANTIC_VERSION, inventory), protocol=pickle.HIGHEST_PROTOCOL)


def main(argv: list[str]) -> int:
    """`python -m lethe.inventory SOURCE.yaml TARGET.pickle` (layers/lethe/Makefile runs it)."""
    if len(argv) != 2:
        print("usage: python -m lethe.inventory SOURCE.yaml TARGET.pickle", file=sys.stderr)
        return 2
    source, target = Path(argv[0]), Path(argv[1])
    try:
        compiled = compile_inventory(source.read_text(encoding="utf-8"), source=str(source))
    except InventoryError as exc:
        print(f"{source}: {exc}", file=sys.stderr)
        return 1
    target.write_bytes(compiled)
    return 0


if __name__ == "__main__":  # pragma: no cover - the layer build's entry point
    # Run as lethe.inventory, not __main__: the compiled inventory names its classes by their module.
    from lethe.inventory import main as compile_main

    sys.exit(compile_main(sys.argv[1:]))
