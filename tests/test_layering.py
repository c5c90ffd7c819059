"""The dependency rules of the house style ("Dependencies point one way"), checked on the source.

Every `.py` under the scanned packages is parsed with `ast` and every import is collected,
including those inside functions: a lazy import is still a dependency (and an import circle
hidden inside a function is still a circle). The rules are plain functions of
{relative path: source}, so `test_checker_reports_each_rule` can feed them a synthetic tree with
one violation of each and prove the checks can fail.
"""

import ast
from collections.abc import Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCANNED = ("accounts", "messaging", "groups", "tenants", "chatproject", "gateway")
# The Django apps, lowest first: an app may import only apps before it (accounts <- messaging <-
# groups <- tenants), which is what makes the app-level import graph acyclic.
APPS = ("accounts", "messaging", "groups", "tenants")
# The composition root: the only ground-floor modules that mount apps and the gateway.
COMPOSITION_ROOT = {"chatproject/urls.py", "chatproject/asgi.py"}
# The protocol-agnostic floor of the gateway: it takes its protocol as a parameter.
PROTOCOL_FREE = (
    "gateway/hub.py",
    "gateway/audience.py",
    "gateway/actions.py",
    "gateway/protocol.py",
    "gateway/registry.py",
    "gateway/transports/",
)


def _module_of(path: str) -> tuple[str, str]:
    """(module name, package name) of a file given by its path relative to the root."""
    parts = path[: -len(".py")].split("/")
    if parts[-1] == "__init__":
        parts = parts[:-1]
        return ".".join(parts), ".".join(parts)
    return ".".join(parts), ".".join(parts[:-1])


def imports_of(path: str, source: str) -> set[str]:
    """Absolute names of every module `source` imports, anywhere in the file. `from x import y`
    counts as importing both `x` and `x.y` (y may be a submodule: `from gateway import protocols`)."""
    _module, package = _module_of(path)
    found: set[str] = set()
    for node in ast.walk(ast.parse(source, filename=path)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base_parts = package.split(".")
                base_parts = base_parts[: len(base_parts) - (node.level - 1)]
                base = ".".join([*base_parts, node.module] if node.module else base_parts)
            else:
                base = node.module or ""
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names if alias.name != "*")
    return found


def _top(name: str) -> str:
    """The top-level package of a module name."""
    return name.split(".")[0]


def _home(path: str) -> str:
    """The top-level package a file belongs to."""
    return path.split("/")[0]


def _within(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def rule_apps_never_import_the_gateway(imports: Mapping[str, set[str]]) -> list[str]:
    """(a) The apps are below the gateway: they never import it, not even lazily."""
    return [
        f"{path} imports {name}"
        for path, names in imports.items()
        if _home(path) in APPS
        for name in sorted(names)
        if _top(name) == "gateway"
    ]


def rule_ground_floor_imports_no_app(imports: Mapping[str, set[str]]) -> list[str]:
    """(b) `chatproject` is the ground floor (settings, core, bus): it imports no app and not the
    gateway, except its composition root (urls.py, asgi.py), which mounts them."""
    return [
        f"{path} imports {name}"
        for path, names in imports.items()
        if _home(path) == "chatproject" and path not in COMPOSITION_ROOT
        for name in sorted(names)
        if _top(name) in (*APPS, "gateway")
    ]


def app_graph(imports: Mapping[str, set[str]]) -> dict[str, set[str]]:
    """app -> the other apps it imports."""
    graph: dict[str, set[str]] = {app: set() for app in APPS}
    for path, names in imports.items():
        if _home(path) in APPS:
            graph[_home(path)].update(_top(n) for n in names if _top(n) in APPS and _top(n) != _home(path))
    return graph


def rule_no_cycle_between_apps(imports: Mapping[str, set[str]]) -> list[str]:
    """(c) No import circle between apps: each app imports only the apps below it in APPS
    (accounts imports neither messaging nor groups; messaging does not import groups). Any
    cycle would need an edge pointing up, so this also reports every cycle's upward edge."""
    found = []
    for path, names in imports.items():
        app = _home(path)
        if app not in APPS:
            continue
        for name in sorted(names):
            other = _top(name)
            if other in APPS and APPS.index(other) > APPS.index(app):
                found.append(f"{path} imports {name} ({app} must not depend on {other})")
    return found


def _protocol_free(path: str) -> bool:
    return any(path == p or (p.endswith("/") and path.startswith(p)) for p in PROTOCOL_FREE)


def rule_hub_never_imports_a_protocol(imports: Mapping[str, set[str]]) -> list[str]:
    """(d) The hub, the audience evaluator, the actions facade and the transports serve every
    wire protocol: none of them imports `gateway.protocols` (the protocol is a parameter)."""
    return [
        f"{path} imports {name}"
        for path, names in imports.items()
        if _protocol_free(path)
        for name in sorted(names)
        if _within(name, "gateway.protocols")
    ]


def _sources() -> dict[str, str]:
    return {
        path.relative_to(ROOT).as_posix(): path.read_text()
        for package in SCANNED
        for path in sorted((ROOT / package).rglob("*.py"))
    }


SOURCES = _sources()
IMPORTS = {path: imports_of(path, source) for path, source in SOURCES.items()}


def test_the_scan_sees_the_apps_and_their_lazy_imports():
    """The checker reads what it should: every app, and imports inside functions."""
    assert {_home(p) for p in SOURCES} == set(SCANNED)
    assert "accounts.signals" in IMPORTS["messaging/apps.py"]  # imported inside ready()


def test_apps_never_import_the_gateway():
    assert rule_apps_never_import_the_gateway(IMPORTS) == []


def test_ground_floor_imports_no_app_and_no_gateway():
    assert rule_ground_floor_imports_no_app(IMPORTS) == []


def test_no_import_cycle_between_apps():
    assert rule_no_cycle_between_apps(IMPORTS) == []
    graph = app_graph(IMPORTS)
    assert "messaging" not in graph["accounts"] and "groups" not in graph["accounts"]
    assert "groups" not in graph["messaging"]


def test_hub_audience_actions_and_transports_never_import_a_protocol():
    checked = [p for p in SOURCES if _protocol_free(p)]
    assert {"gateway/hub.py", "gateway/audience.py", "gateway/actions.py", "gateway/transports/ws.py"} <= set(
        checked
    )
    assert rule_hub_never_imports_a_protocol({p: IMPORTS[p] for p in checked}) == []


def test_checker_reports_each_rule():
    """A synthetic tree with one violation of each rule (several of them lazy or relative), and
    a clean one: each violation is reported, the clean tree yields nothing."""
    bad = {
        "accounts/services.py": "def f():\n    from messaging.services import ensure\n",
        "messaging/services/sending.py": "from ...groups import models\n",
        "groups/selectors.py": "import gateway.hub\n",
        "chatproject/bus/publish.py": "def g():\n    import accounts.models\n",
        "chatproject/urls.py": "from gateway.app import build\nfrom messaging.apis import media\n",
        "gateway/hub.py": "from .protocols import expresschat as protocol\n",
        "gateway/transports/ws.py": "from gateway import protocols\n",
        "gateway/protocols/expresschat/__init__.py": "from gateway import hub\n",
    }
    imports = {path: imports_of(path, source) for path, source in bad.items()}
    assert rule_apps_never_import_the_gateway(imports) == ["groups/selectors.py imports gateway.hub"]
    assert rule_ground_floor_imports_no_app(imports) == ["chatproject/bus/publish.py imports accounts.models"]
    assert rule_no_cycle_between_apps(imports) == [
        "accounts/services.py imports messaging.services (accounts must not depend on messaging)",
        "accounts/services.py imports messaging.services.ensure (accounts must not depend on messaging)",
        "messaging/services/sending.py imports groups (messaging must not depend on groups)",
        "messaging/services/sending.py imports groups.models (messaging must not depend on groups)",
    ]
    assert app_graph(imports)["accounts"] == {"messaging"}
    assert rule_hub_never_imports_a_protocol(imports) == [
        "gateway/hub.py imports gateway.protocols",
        "gateway/hub.py imports gateway.protocols.expresschat",
        "gateway/transports/ws.py imports gateway.protocols",
    ]

    clean = {
        "accounts/services.py": "from .models import User\nfrom chatproject.bus import publish\n",
        "messaging/services/sending.py": "from accounts.models import User\nfrom ..models import Message\n",
        "groups/services.py": "from messaging.services import system_message_post\n",
        "chatproject/bus/publish.py": "from .groups import user_group\n",
        "gateway/hub.py": "from messaging import services\n",
    }
    imports = {path: imports_of(path, source) for path, source in clean.items()}
    for rule in (
        rule_apps_never_import_the_gateway,
        rule_ground_floor_imports_no_app,
        rule_no_cycle_between_apps,
        rule_hub_never_imports_a_protocol,
    ):
        assert rule(imports) == [], rule.__name__
