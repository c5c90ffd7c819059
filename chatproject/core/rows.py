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


@cache
def _plain_names(model: type[models.Model]) -> tuple[str, ...] | None:
    """The attribute names of `model`'s concrete fields in order, when `Model.from_db` does no
    more for it than store each column in the new instance's __dict__ after its state (neither
    `__init__` nor `from_db` overridden, no column behind a descriptor that does more); None
    otherwise. Receivers of pre_init and post_init can come and go, so `_fast` asks about them
    at each use."""
    names = tuple(field.attname for field in concrete_fields(model))
    if (
        model.__init__ is not models.Model.__init__
        or model.from_db.__func__ is not models.Model.from_db.__func__
        or not all(type(getattr(model, name, None)) in _PLAIN_ATTRIBUTES for name in names)
    ):
        return None
    return names


def _fast(model: type[models.Model]) -> tuple[str, ...] | None:
    names = _plain_names(model)
    if names is None or pre_init.has_listeners(model) or post_init.has_listeners(model):
        return None
    return names


def _filled(model: type[M], alias: str, names: Sequence[str], values: Sequence[Any]) -> M:
    new = model.__new__(model)
    state = new.__dict__["_state"] = ModelState()
    state.adding, state.db = False, alias
    new.__dict__.update(zip(names, values, strict=True))
    return new


def made(model: type[M], alias: str, values: Sequence[Any]) -> M:
    """`model.from_db(alias, attnames, values)` for a full row (a value for every concrete
    field, in the model's order, already converted), without `Model.__init__`'s `setattr` per
    field where that would do nothing more (`_fast`): the instance's `__dict__` is filled at
    once, as `__init__` would leave it. 4 µs an instance instead of 8.7 (Membership) on the
    bench machine; a send batch makes three per message (issue 19, session 5)."""
    names = _fast(model)
    if names is None:
        return model.from_db(alias, [field.attname for field in concrete_fields(model)], values)
    return _filled(model, alias, names, values)


def maker(connection: BaseDatabaseWrapper, model: type[M]) -> Callable[[Sequence[Any]], M]:
    """`instance` for the many rows of one statement: the converters, the attribute names and
    whether `made` may fill `__dict__` looked up once, not per row (`converted` hashes the field
    tuple and reads the connection for every row: 9 µs a row of Message on the bench machine;
    an instance 2 µs instead of 12.6, and a page of history makes about 55: bench/README.md,
    session 5)."""
    fields = concrete_fields(model)
    alias = connection.alias
    chains = _converters(connection.vendor, fields, alias)
    names = _fast(model)
    if names is None:
        all_names = [field.attname for field in fields]

        def build(values: Sequence[Any]) -> M:
            return model.from_db(alias, all_names, values)

    else:

        def build(values: Sequence[Any]) -> M:
            return _filled(model, alias, names, values)

    if not chains:
        return build

    def make(row: Sequence[Any]) -> M:
        values = list(row)
        for index, chain, col in chains:
            value = values[index]
            for convert in chain:
                value = convert(value, col, connection)
            values[index] = value
        return build(values)

    return make


def any_of(connection: BaseDatabaseWrapper, values: Sequence[Any]) -> tuple[str, list]:
    """`<column> {sql}` is true for the values in `values` (not empty): one array parameter on
    PostgreSQL, so the statement text is the same whatever their number (psycopg caches the
    parsing of a statement by its text), a placeholder each elsewhere."""
    if connection.vendor == "postgresql":
        return "= ANY(%s)", [list(values)]
    return f"IN ({', '.join(['%s'] * len(values))})", list(values)


def instance(connection: BaseDatabaseWrapper, model: type[M], row: Sequence[Any]) -> M:
    """A model instance from a row of `columns(..., concrete_fields(model))`, as a QuerySet
    would have made it."""
    return made(model, connection.alias, converted(connection, concrete_fields(model), row))
