import { _setPreopens } from "@bytecodealliance/preview2-shim/filesystem";
_setPreopens({ [process.cwd()]: process.cwd() });
