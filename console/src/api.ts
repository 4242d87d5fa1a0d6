// hostd's HTTP/JSON gateway (docs/api.md): POST /v1/{Service}/{Method} with protobuf JSON, the
// token as a bearer header, errors as {code, status, message, details}; server streams as
// Server-Sent Events read with fetch (so the token travels in a header, never in a URL).

const TOKEN_KEY = "hosting.token";

export function token(): string {
  return sessionStorage.getItem(TOKEN_KEY) ?? "";
}

export function setToken(value: string): void {
  if (value) sessionStorage.setItem(TOKEN_KEY, value);
  else sessionStorage.removeItem(TOKEN_KEY);
}

export interface FieldViolation {
  field: string;
  description: string;
}

// A failed call: the gRPC status name and message, and the bad fields when there were any.
export class ApiError extends Error {
  constructor(
    public status: string,
    message: string,
    public httpStatus: number,
    public violations: FieldViolation[] = [],
  ) {
    super(message);
  }
}

function errorOf(httpStatus: number, body: unknown): ApiError {
  const b = (body ?? {}) as {
    status?: string;
    message?: string;
    details?: { fieldViolations?: FieldViolation[] }[];
  };
  const violations = (b.details ?? []).flatMap((d) => d.fieldViolations ?? []);
  return new ApiError(
    b.status ?? `HTTP ${httpStatus}`,
    b.message ?? `hostd answered HTTP ${httpStatus}`,
    httpStatus,
    violations,
  );
}

function headers(): Record<string, string> {
  const h: Record<string, string> = { "Content-Type": "application/json" };
  const t = token();
  if (t) h["Authorization"] = `Bearer ${t}`;
  return h;
}

// One unary call: the response message, or an ApiError.
export async function call<T = any>(
  service: string,
  method: string,
  request: object = {},
): Promise<T> {
  let response: Response;
  try {
    response = await fetch(`/v1/${service}/${method}`, {
      method: "POST",
      headers: headers(),
      body: JSON.stringify(request),
    });
  } catch (e) {
    throw new ApiError("UNAVAILABLE", `hostd is out of reach: ${String(e)}`, 0);
  }
  const text = await response.text();
  let body: unknown = undefined;
  try {
    body = text ? JSON.parse(text) : {};
  } catch {
    throw new ApiError("INTERNAL", `hostd answered something that is not JSON: ${text}`, 0);
  }
  if (!response.ok) throw errorOf(response.status, body);
  return body as T;
}

export interface StreamHandlers<T> {
  onMessage: (message: T, id: number) => void;
  // The stream ended as the server meant it to (a finished release, a run that ended).
  onEnd?: () => void;
  // A failure; the stream reconnects by itself unless `fatal`.
  onError?: (error: ApiError, fatal: boolean) => void;
}

// Follows a server stream, reconnecting after a dropped connection from the last event seen
// (Last-Event-ID), until the server ends it or `close()` is called. One stream, one
// connection: a view holds one per thing it follows and closes it when it goes.
export function stream<T = any>(
  service: string,
  method: string,
  request: object,
  handlers: StreamHandlers<T>,
): { close: () => void } {
  const controller = new AbortController();
  let lastId = -1;
  let closed = false;

  const run = async (): Promise<void> => {
    while (!closed) {
      const h = headers();
      if (lastId >= 0) h["Last-Event-ID"] = String(lastId);
      let response: Response;
      try {
        response = await fetch(`/v1/${service}/${method}`, {
          method: "POST",
          headers: h,
          body: JSON.stringify(request),
          signal: controller.signal,
        });
      } catch {
        if (closed) return;
        handlers.onError?.(new ApiError("UNAVAILABLE", "hostd is out of reach; retrying", 0), false);
        await sleep(2000);
        continue;
      }
      if (!response.ok || !response.body) {
        const text = await response.text();
        let body: unknown = {};
        try {
          body = JSON.parse(text);
        } catch {
          /* not JSON */
        }
        const error = errorOf(response.status, body);
        const fatal = response.status >= 400 && response.status < 500 && response.status !== 429;
        handlers.onError?.(error, fatal);
        if (fatal) return;
        await sleep(2000);
        continue;
      }
      const reader = response.body.getReader();
      const decoder = new TextDecoder();
      let buffer = "";
      try {
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buffer += decoder.decode(value, { stream: true });
          let end: number;
          while ((end = buffer.indexOf("\n\n")) >= 0) {
            const frame = buffer.slice(0, end);
            buffer = buffer.slice(end + 2);
            let id = "";
            let event = "message";
            let data = "";
            for (const line of frame.split("\n")) {
              if (line.startsWith("id: ")) id = line.slice(4);
              else if (line.startsWith("event: ")) event = line.slice(7);
              else if (line.startsWith("data: ")) data += line.slice(6);
            }
            if (event === "end") {
              closed = true;
              handlers.onEnd?.();
              return;
            }
            if (event === "error") {
              let body: unknown = {};
              try {
                body = JSON.parse(data);
              } catch {
                /* not JSON */
              }
              handlers.onError?.(errorOf(500, body), false);
              continue;
            }
            if (id) lastId = Number(id);
            handlers.onMessage(JSON.parse(data) as T, lastId);
          }
        }
      } catch {
        if (closed) return;
      }
      // The connection ended without an end event: resume after the last event seen.
      if (!closed) await sleep(1000);
    }
  };
  void run();
  return {
    close: () => {
      closed = true;
      controller.abort();
    },
  };
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

// "RELEASE_STATE_PROGRESSING" -> "progressing".
export function enumName(value: string | undefined, prefix: string): string {
  if (!value) return "unspecified";
  return value.replace(prefix, "").toLowerCase().replace(/_/g, " ");
}

// int64 fields arrive as strings (protobuf's JSON mapping).
export function num(value: string | number | undefined): number {
  return value === undefined ? 0 : Number(value);
}

export function when(timestamp: string | undefined): string {
  if (!timestamp) return "";
  const d = new Date(timestamp);
  return d.toLocaleTimeString();
}
