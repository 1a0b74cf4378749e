// The public API (`import { defineConfig, defineDataset, integer, … } from 'dropload'`): everything a
// config module needs, and nothing else. package.json `exports` "." points here (built: dist/shared/config/index.js).

// The zod the loader validates with: a config (and every module `dropload init` writes) imports `z`
// from here, so it needs no zod of its own and its schemas are built by the same copy that runs them.
export { z } from 'zod';
export { snakeCase } from './column-names.ts';
export { type DroploadConfig, defineConfig } from './config.ts';
export {
  type DatasetDefinition,
  defineDataset,
  type Format,
  type Publish,
  type ReferenceDefinition,
  type RowSchema,
  type TargetDefinition,
  type TargetMode,
  type ValuePath,
  type WriteMode,
} from './dataset.ts';
export {
  bigintText,
  boolean,
  type DateOptions,
  date,
  decimal,
  integer,
  type LocalTimestampOptions,
  localTimestamp,
  type NumericOptions,
  numeric,
  timestamp,
} from './fields.ts';
