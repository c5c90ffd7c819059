"""Hand-written SQL for the handful of reads every handshake repeats (issue 19).

Building a query through the ORM (a QuerySet, its compiler, model instances) cost 0.69 ms of
CPU for the handshake's session-and-user query on the bench machine against 0.13 ms for the same
statement through a cursor and `Model.from_db`; a handshake ran three or four such queries
(bench/handshake_cost.py: 3.3 ms of CPU before, 0.54 ms after), a reconnect storm thousands. These
helpers keep such SQL honest: table and column names come from the models' `_meta`, values go
through the same database converters the ORM applies (SQLite returns datetimes as text), and
instances are made as `Model.from_db` makes them for a QuerySet (`made`). Anything off the hot
path stays on the ORM.
"""

from collections.abc import Callable, Sequence
from functools import cache
from typing import Any, TypeVar

from django.db import models
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models.base import ModelState
from django.db.models.signals import post_init, pre_init

M = TypeVar("M", bound=models.Model)
Converters = tuple[tuple[int, tuple[Callable[..., Any], ...], Any], ...]


def q(connection: BaseDatabaseWrapper, *names: str) -> str:
    """`alias."column"`, quoted for the connection's backend."""
    return ".".join(connection.ops.quote_name(name) for name in names)


def table(connection: BaseDatabaseWrapper, model: type[models.Model]) -> str:
    return connection.ops.quote_name(model._meta.db_table)


def columns(connection: BaseDatabaseWrapper, alias: str, fields: Sequence[models.Field]) -> str:
    """The select list for `fields` of the table aliased `alias`."""
    return ", ".join(q(connection, alias, field.column) for field in fields)


def concrete_fields(model: type[models.Model]) -> tuple[models.Field, ...]:
    return tuple(model._meta.concrete_fields)


@cache
def _converters(vendor: str, fields: tuple[models.Field, ...], connection_alias: str) -> Converters:
    from django.db import connections

    connection = connections[connection_alias]
    found = []
    for index, field in enumerate(fields):
        col = field.get_col(field.model._meta.db_table)
        chain = tuple(connection.ops.get_db_converters(col) + col.get_db_converters(connection))
        if chain:
            found.append((index, chain, col))
    return tuple(found)


def converted(connection: BaseDatabaseWrapper, fields: tuple[models.Field, ...], row: Sequence[Any]) -> list:
    """A row of `fields`' columns with the backend's and the fields' converters applied (none
    for this project's models on PostgreSQL; SQLite's datetimes and booleans)."""
    values = list(row)
    for index, chain, col in _converters(connection.vendor, fields, connection.alias):
        value = values[index]
        for convert in chain:
            value = convert(value, col, connection)
        values[index] = value
    return values


# The class attributes of columns whose setting by `Model.__init__` only stores the value in the
# instance's __dict__ (a new instance has no related object cached for a foreign key to drop).
_PLAIN_ATTRIBUTES = (
    models.query_utils.DeferredAttribute,
    models.fields.related_descriptors.ForeignKeyDeferredAttribute,
    models.fields.files.FileDescriptor,
)


def _made_as_init_makes(model: type[models.Model], names: Sequence[str]) -> bool:
    """Whether `Model.from_db` would do no more for `model` than store each column in the new
    instance's __dict__ after its state: neither the model nor `from_db` overridden, no receiver
    of pre_init or post_init for it, no column behind a descriptor that does more."""
    return (
        model.__init__ is models.Model.__init__
        and model.from_db.__func__ is models.Model.from_db.__func__
        and not pre_init.has_listeners(model)
        and not post_init.has_listeners(model)
        and all(type(getattr(model, name, None)) in _PLAIN_ATTRIBUTES for name in names)
    )


def maker(connection: BaseDatabaseWrapper, model: type[M]) -> Callable[[Sequence[Any]], M]:
    """`instance` for the many rows of one statement: the converters and the attribute names
    looked up once, not per row (`converted` hashes the field tuple and reads the connection
    for every row: 9 µs a row of Message on the bench machine).

    The instances are what `Model.from_db` makes (state, then each column in the instance's
    __dict__, in field order), without its call of `Model.__init__` per row when that would
    do nothing more (`_made_as_init_makes`): 2 µs an instance instead of 12.6 for Message on
    the bench machine, and a page of history makes about 55 (bench/README.md, session 5)."""
    fields = concrete_fields(model)
    names = [field.attname for field in fields]
    alias = connection.alias
    chains = _converters(connection.vendor, fields, alias)

    if _made_as_init_makes(model, names):
        new = model.__new__

        def from_db(_alias: str, _names: list[str], values: Sequence[Any]) -> M:
            instance = new(model)
            state = ModelState()
            state.adding, state.db = False, alias
            instance.__dict__["_state"] = state
            instance.__dict__.update(zip(names, values, strict=True))
            return instance

    else:
        from_db = model.from_db
    if not chains:
        return lambda row: from_db(alias, names, row)

    def make(row: Sequence[Any]) -> M:
        values = list(row)
        for index, chain, col in chains:
            value = values[index]
            for convert in chain:
                value = convert(value, col, connection)
            values[index] = value
        return from_db(alias, names, values)

    return make


def any_of(connection: BaseDatabaseWrapper, values: Sequence[Any]) -> tuple[str, list]:
    """`<column> {sql}` is true for the values in `values` (not empty): one array parameter on
    PostgreSQL, so the statement text is the same whatever their number (psycopg caches the
    parsing of a statement by its text), a placeholder each elsewhere."""
    if connection.vendor == "postgresql":
        return "= ANY(%s)", [list(values)]
    return f"IN ({', '.join(['%s'] * len(values))})", list(values)


@cache
def _attnames(model: type[models.Model]) -> tuple[str, ...] | None:
    """The attribute names of `model`'s concrete fields in order, when `made` may set them
    directly; None for a model that makes its instances its own way (`from_db` or `__init__`
    overridden)."""
    if (
        model.from_db.__func__ is not models.Model.from_db.__func__
        or model.__init__ is not models.Model.__init__
    ):
        return None
    return tuple(field.attname for field in concrete_fields(model))


def made(model: type[M], alias: str, values: Sequence[Any]) -> M:
    """`model.from_db(alias, attnames, values)` for a full row (a value for every concrete
    field, in the model's order, already converted), without `Model.__init__`'s `setattr` per
    field: the instance's `__dict__` is filled at once. It ends the same as what `__init__`
    makes of a row (each field's value under its attname, a fresh `ModelState`): for a model's
    own fields `setattr` only stores into `__dict__` (a foreign key's attname descriptor also
    drops a cached related object, which a new instance has not got). A model with
    `pre_init`/`post_init` receivers, or its own `from_db` or `__init__`, goes through
    `from_db`. A send batch made three instances per message, and `__init__` was 6% of the
    writer thread's samples (issue 19, session 5)."""
    names = _attnames(model)
    if names is None or pre_init.has_listeners(model) or post_init.has_listeners(model):
        return model.from_db(alias, [field.attname for field in concrete_fields(model)], values)
    new = model.__new__(model)
    state = new.__dict__["_state"] = ModelState()
    state.adding, state.db = False, alias
    new.__dict__.update(zip(names, values, strict=True))
    return new


def instance(connection: BaseDatabaseWrapper, model: type[M], row: Sequence[Any]) -> M:
    """A model instance from a row of `columns(..., concrete_fields(model))`, as a QuerySet
    would have made it."""
    return made(model, connection.alias, converted(connection, concrete_fields(model), row))
