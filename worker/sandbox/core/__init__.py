"""Core modules (packed, seed-rust, seed-c, scalar ABIs): checking, compiling, running."""
