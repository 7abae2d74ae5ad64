#!/usr/bin/env node
// NIM-compatible alias: `list-model-profiles` = `portico list-model-profiles`.
import { run } from './main.js';

run(['list-model-profiles', ...process.argv.slice(2)]);
