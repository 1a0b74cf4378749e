import { Logger, type LogItem } from '@aws-lambda-powertools/logger';
import type { ConstructorOptions } from '@aws-lambda-powertools/logger/types';

/**
 * The local runner's logger: Powertools' JSON lines, written to stderr. On Lambda logs go to stdout
 * (shared/runtime keeps Powertools' own logger), but on the command line stdout is the report, and
 * `run --json --verbose` must still print JSON alone there.
 */
export class StderrLogger extends Logger {
  protected override printLog(_logLevel: number, log: LogItem): void {
    log.prepareForPrint();
    process.stderr.write(`${JSON.stringify(log.getAttributes(), this.getJsonReplacer())}\n`);
  }

  /** Children (`createChild`) write where their parent does. */
  protected override createLogger(options?: ConstructorOptions): Logger {
    return new StderrLogger(options);
  }
}
