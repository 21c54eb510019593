#!/usr/bin/env node
// The bundle esbuild builds (scripts/bundle.js): what ships, and what the integration tests run.
import '../dist/bundle/cli.js';
