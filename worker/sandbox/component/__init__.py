"""Components (the component model, WIT worlds): checking, compiling, running."""
