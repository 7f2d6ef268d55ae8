// RFC 4180 CSV reading with line numbers, so every validation error can name the line it came from.
import { AppError } from './errors.js';

/** One data record of a CSV file. */
export interface CsvRecord {
  /** 1-based line number in the file where the record starts (the header is line 1). */
  readonly line: number;
  /** Field values in header order. */
  readonly values: readonly string[];
}

/** A parsed CSV file. */
export interface CsvTable {
  readonly header: readonly string[];
  readonly records: readonly CsvRecord[];
}

/** Options of {@link parseCsv}. */
export interface ParseCsvOptions {
  /** Field delimiter; default `,`. ChannelAttribution path files use `;`. */
  readonly delimiter?: string;
  /** Name of the source, used in error messages (e.g. the file name). */
  readonly source?: string;
}

/**
 * Parses CSV text (quoted fields, doubled quotes, CRLF or LF, a UTF-8 BOM) into a header and records.
 * Blank lines are skipped. Throws AppError `VALIDATION_FAILED` naming the line when a quote is unterminated
 * or a record's field count differs from the header's.
 */
export function parseCsv(text: string, options: ParseCsvOptions = {}): CsvTable {
  const delimiter = options.delimiter ?? ',';
  const source = options.source ?? 'CSV';
  if (delimiter.length !== 1 || delimiter === '"' || delimiter === '\n' || delimiter === '\r') {
    throw new AppError('BAD_REQUEST', `CSV delimiter must be one character other than a quote or newline`);
  }
  const input = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
  const rows: CsvRecord[] = [];
  let field = '';
  let fields: string[] = [];
  let line = 1;
  let recordLine = 1;
  let inQuotes = false;
  let fieldWasQuoted = false;
  let index = 0;

  const endRecord = (): void => {
    fields.push(field);
    const blank = fields.length === 1 && fields[0] === '' && !fieldWasQuoted;
    if (!blank) rows.push({ line: recordLine, values: fields });
    fields = [];
    field = '';
    fieldWasQuoted = false;
  };

  while (index < input.length) {
    const char = input[index]!;
    if (inQuotes) {
      if (char === '"') {
        if (input[index + 1] === '"') {
          field += '"';
          index += 2;
          continue;
        }
        inQuotes = false;
        index += 1;
        continue;
      }
      if (char === '\n') line += 1;
      field += char;
      index += 1;
      continue;
    }
    if (char === '"' && field === '') {
      inQuotes = true;
      fieldWasQuoted = true;
      index += 1;
      continue;
    }
    if (char === delimiter) {
      fields.push(field);
      field = '';
      fieldWasQuoted = false;
      index += 1;
      continue;
    }
    if (char === '\r' || char === '\n') {
      endRecord();
      index += char === '\r' && input[index + 1] === '\n' ? 2 : 1;
      line += 1;
      recordLine = line;
      continue;
    }
    field += char;
    index += 1;
  }
  if (inQuotes) {
    throw new AppError('VALIDATION_FAILED', `${source} line ${recordLine}: unterminated quoted field`, {
      details: { line: recordLine },
    });
  }
  if (field !== '' || fields.length > 0 || fieldWasQuoted) endRecord();

  const [headerRecord, ...records] = rows;
  if (headerRecord === undefined) {
    throw new AppError('VALIDATION_FAILED', `${source} is empty: expected a header line`, {
      details: { line: 1 },
    });
  }
  const header = headerRecord.values.map((name) => name.trim());
  for (const record of records) {
    if (record.values.length !== header.length) {
      throw new AppError(
        'VALIDATION_FAILED',
        `${source} line ${record.line}: expected ${header.length} fields (${header.join(delimiter)}), found ${record.values.length}`,
        { details: { line: record.line, expected: header.length, found: record.values.length } },
      );
    }
  }
  return { header, records };
}

/** Quotes one value for CSV output when it contains the delimiter, a quote or a newline. */
export function csvField(value: string | number | null, delimiter = ','): string {
  if (value === null) return '';
  const text = String(value);
  return /["\r\n]/.test(text) || text.includes(delimiter) ? `"${text.replaceAll('"', '""')}"` : text;
}
