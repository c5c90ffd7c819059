"""What payload keys each event handler of a protocol module reads, for sweeps that put odd values
(bytes) in each of them: the string constants in a handler's code and in the module's functions
it calls, transitively, read with `ast`. A superset (messages and response keys come along);
sweeps intersect it with the keys they have values for."""

import ast
from pathlib import Path
from types import ModuleType


def payload_fields(module: ModuleType, decorator: str = "handler") -> dict[str, set[str]]:
    """{event name: string constants} for every function decorated `@<decorator>("event")`."""
    tree = ast.parse(Path(module.__file__).read_text())
    functions = {
        node.name: node for node in tree.body if isinstance(node, ast.AsyncFunctionDef | ast.FunctionDef)
    }

    def constants_and_calls(node: ast.AST) -> tuple[set[str], set[str]]:
        constants = {
            n.value for n in ast.walk(node) if isinstance(n, ast.Constant) and isinstance(n.value, str)
        }
        called = {
            n.func.id for n in ast.walk(node) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)
        }
        return constants, called & set(functions)

    fields: dict[str, set[str]] = {}
    for node in functions.values():
        for mark in node.decorator_list:
            if isinstance(mark, ast.Call) and getattr(mark.func, "id", "") == decorator:
                seen, todo, constants = set(), [node.name], set()
                while todo:
                    name = todo.pop()
                    if name not in seen:
                        seen.add(name)
                        more, called = constants_and_calls(functions[name])
                        constants |= more
                        todo += called
                fields[mark.args[0].value] = constants
    return fields
