import type { Command } from 'commander';

/** Operator commands (replay, backfill, rejects, retry-rejects) hang off the main program here. */
export function registerOpsCommands(
  _program: Command,
  _globals: () => { config?: string; verbose?: boolean },
): void {}
