"""The machinery behind every scrap model (`scraps`): its name, schema version, validation
of older versions, and reading it back from a record. `scraps` adds ``glue`` and the models.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Self

from pydantic import ValidationError

from deploybook.errors import DeploybookError
from deploybook.session.glued import Glued, read_glued

__all__ = ["ScrapInvalid", "ScrapModel", "glued_of"]


class ScrapInvalid(DeploybookError):
    """A scrap in an earlier record is malformed or from a newer schema than this one reads."""


class ScrapModel:
    """What every scrap model can do but glue itself: name itself, read itself back."""

    NAME: ClassVar[str]
    WRITTEN_BY: ClassVar[tuple[str, ...]]
    SCHEMA_VERSION: ClassVar[int] = 1

    def data(self) -> Any:
        """The JSON the scrap holds: what was set, never defaults the writer left out."""
        return self.model_dump(mode="json", exclude_unset=True, fallback=str)  # type: ignore[attr-defined]

    @classmethod
    def upgrade(cls, data: Any, version: int) -> Any:
        """The data of an older schema version in the current shape (version 0: unchanged,
        every field a version-0 writer could leave out has a default)."""
        return data

    @classmethod
    def parse(cls, data: Any, version: int | None = None, where: str = "") -> Self:
        """Validate one scrap's data of a given schema version; ScrapInvalid says why not."""
        version = cls.SCHEMA_VERSION if version is None else version
        source = f"{where}: " if where else ""
        writers = " or ".join(cls.WRITTEN_BY)
        if not isinstance(version, int) or version > cls.SCHEMA_VERSION:
            raise ScrapInvalid(
                f"{source}scrap {cls.NAME!r} has schema version {version!r}, newer than the "
                f"{cls.SCHEMA_VERSION} this deploybook reads: upgrade deploybook to read it"
            )
        try:
            return cls.model_validate(cls.upgrade(data, version))  # type: ignore[attr-defined]
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(map(str, e['loc'])) or 'value'}: {e['msg']}" for e in exc.errors()
            )
            raise ScrapInvalid(
                f"{source}scrap {cls.NAME!r} (schema version {version}) is not a valid "
                f"{cls.__name__}: {problems}; run {writers} again to write a fresh record"
            ) from None

    @classmethod
    def read(cls, source: Any, default: Any = None) -> Self | Any:
        """This scrap from a record (`records.Record`), a notebook path or ``{name: Glued}``;
        ``default`` when the record holds none."""
        glued, where = glued_of(source)
        found = glued.get(cls.NAME)
        if found is None:
            return default
        return cls.parse(found.data, found.schema_version, where)

    @classmethod
    def peek(cls, source: Any) -> Any:
        """The raw data, unvalidated (None when absent): for the overview, which shows damaged
        records as best it can instead of refusing them."""
        found = glued_of(source)[0].get(cls.NAME)
        return None if found is None else found.data


def glued_of(source: Any) -> tuple[dict[str, Glued], str]:
    if isinstance(source, str | Path):
        return read_glued(Path(source)), str(source)
    if isinstance(source, dict):
        return source, ""
    return source.glued, str(source.path)  # a records.Record
