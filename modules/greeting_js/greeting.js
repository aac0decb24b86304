// The greeting as a WebAssembly component written in JavaScript (jco componentize builds it).
// World `greeter` of modules/greeting_component/greeting.wit: export greet: func(name: string) -> string.
// The canonical ABI carries the name and the answer as UTF-8; JavaScript strings handle any name.
export function greet(name) {
  return `Hello World, ${name}!`;
}
