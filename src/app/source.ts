// A compose file as later passes see it: its name and a way from a data path back to line:column,
// so a schema, override or port error points at the node an operator has to edit.
import { AppError } from './errors.ts';
import type { AppErrorCode, SourcePosition } from './errors.ts';

// A path into the parsed data: mapping keys and sequence indexes.
export type DataPath = readonly (string | number)[];

// The file being checked.
export type Source = {
  file: string;
  locate(path: DataPath): SourcePosition | undefined;
};

// `services.web.ports[0]`: the path as an operator reads it in the YAML.
export function formatPath(path: DataPath): string {
  return path.map((step, i) => (typeof step === 'number' ? `[${step}]` : i === 0 ? step : `.${step}`)).join('');
}

// An AppError about the node at `path`: positioned there and naming the path first.
export function errorAt(source: Source, code: AppErrorCode, path: DataPath, problem: string): AppError {
  const prefix = path.length > 0 ? `${formatPath(path)}: ` : '';
  return new AppError(code, source.file, prefix + problem, source.locate(path));
}
