"""The greeting as a WebAssembly component written in Python (componentize-py builds it).

World `greeter` of modules/greeting_component/greeting.wit: export greet: func(name: string) -> string.
The canonical ABI carries the name and the answer as UTF-8; Python's str handles any name.
"""

import wit_world


class WitWorld(wit_world.WitWorld):
    def greet(self, name: str) -> str:
        return f"Hello World, {name}!"
