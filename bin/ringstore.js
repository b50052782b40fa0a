#!/usr/bin/env node
// The `ringstore` command: the compiled CLI (run `npm run build` first in a checkout).
import { cliMain } from '../dist/src/cli/main.js';

await cliMain();
