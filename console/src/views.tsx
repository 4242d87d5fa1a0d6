// The console's views. Lists refresh by polling (one call at a time); live views follow one
// server stream each, closed when the view goes, with their histories capped, so a page left
// open does not grow.
import { useEffect, useRef, useState } from "preact/hooks";
import { ApiError, call, enumName, num, stream, when } from "./api";
import { Chart } from "./chart";

const MAX_EVENTS = 300;
const MAX_SAMPLES = 900; // 30 minutes at one sample every 2 s

// Runs `load` now and every `ms` while the view is shown; the last answer or error.
function usePoll<T>(load: () => Promise<T>, ms: number, deps: unknown[] = []) {
  const [data, setData] = useState<T | null>(null);
  const [error, setError] = useState<ApiError | null>(null);
  const [tick, setTick] = useState(0);
  useEffect(() => {
    let stopped = false;
    let timer: number | undefined;
    const run = async () => {
      try {
        const d = await load();
        if (!stopped) {
          setData(d);
          setError(null);
        }
      } catch (e) {
        if (!stopped) setError(e as ApiError);
      }
      if (!stopped) timer = window.setTimeout(run, ms);
    };
    void run();
    return () => {
      stopped = true;
      window.clearTimeout(timer);
    };
  }, [...deps, tick]);
  return { data, error, reload: () => setTick((t) => t + 1) };
}

export function ErrorBox({ error }: { error: ApiError | null }) {
  if (!error) return null;
  return (
    <div class="error" role="alert">
      <strong>{error.status}</strong>: {error.message}
      {error.violations.length > 0 && (
        <ul>
          {error.violations.map((v) => (
            <li>
              <code>{v.field}</code>: {v.description}
            </li>
          ))}
        </ul>
      )}
    </div>
  );
}

// A button that runs `action`, shows its error, and stays disabled while it runs.
function Action({
  id,
  label,
  action,
  onDone,
  kind,
}: {
  id: string;
  label: string;
  action: () => Promise<unknown>;
  onDone?: (result: any) => void;
  kind?: "danger";
}) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<ApiError | null>(null);
  return (
    <span class="action">
      <button
        id={id}
        class={kind ?? ""}
        disabled={busy}
        onClick={async () => {
          setBusy(true);
          setError(null);
          try {
            // Not onDone?.(await action()): without onDone that would skip the action itself.
            const result = await action();
            onDone?.(result);
          } catch (e) {
            setError(e as ApiError);
          } finally {
            setBusy(false);
          }
        }}
      >
        {label}
      </button>
      <ErrorBox error={error} />
    </span>
  );
}

// --- Services ---

const SPEC_TEMPLATE = `{
  "name": "web",
  "image": "hosting/appsvc:dev",
  "replicas": 2,
  "ports": [{"target": 3000, "published": 0}]
}`;

export function ServicesView() {
  const { data, error, reload } = usePoll(() => call("ServiceManager", "ListServices"), 3000);
  const [spec, setSpec] = useState(SPEC_TEMPLATE);
  const [applyError, setApplyError] = useState<ApiError | null>(null);
  const [applied, setApplied] = useState("");
  const apply = async () => {
    setApplyError(null);
    setApplied("");
    let parsed: unknown;
    try {
      parsed = JSON.parse(spec);
    } catch (e) {
      setApplyError(new ApiError("INVALID_ARGUMENT", `the spec is not JSON: ${String(e)}`, 400));
      return;
    }
    try {
      const r = await call("ServiceManager", "ApplyService", { spec: parsed });
      setApplied(
        r.changed
          ? `${r.service.spec.name}: revision ${num(r.service.revision)}`
          : `${r.service.spec.name}: unchanged`,
      );
      reload();
    } catch (e) {
      setApplyError(e as ApiError);
    }
  };
  const services: any[] = data?.services ?? [];
  return (
    <section>
      <h2>Services</h2>
      <ErrorBox error={error} />
      <table id="services">
        <thead>
          <tr>
            <th>name</th>
            <th>image</th>
            <th>revision</th>
            <th>tasks running / desired</th>
            <th>phase</th>
          </tr>
        </thead>
        <tbody>
          {services.map((s) => (
            <tr data-service={s.spec.name}>
              <td>
                <a href={`#/services/${encodeURIComponent(s.spec.name)}`}>{s.spec.name}</a>
              </td>
              <td>{s.spec.image}</td>
              <td>{num(s.revision)}</td>
              <td>
                {s.status?.runningTasks ?? 0} / {s.status?.desiredReplicas ?? 0}
              </td>
              <td class={`phase ${enumName(s.status?.phase, "SERVICE_PHASE_")}`}>
                {enumName(s.status?.phase, "SERVICE_PHASE_")}
              </td>
            </tr>
          ))}
          {services.length === 0 && (
            <tr>
              <td colSpan={5}>No services yet: apply one below.</td>
            </tr>
          )}
        </tbody>
      </table>
      <h3>Apply a service</h3>
      <p>A ServiceSpec as JSON (the fields of proto/hosting/v1/service.proto).</p>
      <textarea
        id="spec"
        rows={10}
        value={spec}
        onInput={(e) => setSpec((e.target as HTMLTextAreaElement).value)}
      />
      <div>
        <button id="apply" onClick={apply}>
          Apply
        </button>
        {applied && <span class="ok" id="applied">{applied}</span>}
      </div>
      <ErrorBox error={applyError} />
    </section>
  );
}

function healthClass(health: string): string {
  return health === "healthy" ? "ok" : health === "unhealthy" ? "bad" : "muted";
}

export function ServiceView({ name }: { name: string }) {
  const status = usePoll(() => call("Cluster", "GetServiceStatus", { name }), 2000, [name]);
  const service = usePoll(() => call("ServiceManager", "GetService", { name }), 2000, [name]);
  const releases = usePoll(
    () => call("Releases", "ListReleases", { service: name, limit: 10 }),
    3000,
    [name],
  );
  const nodes = usePoll(() => call("Cluster", "ListNodes"), 10000);
  const [image, setImage] = useState("");
  const [strategy, setStrategy] = useState("RELEASE_STRATEGY_CANARY");
  const hostOf = (id: string) =>
    (nodes.data?.nodes ?? []).find((n: any) => n.id === id)?.hostname ?? id.slice(0, 12);
  const go = (r: any) => {
    location.hash = `#/releases/${encodeURIComponent(r.id)}`;
  };
  const spec = service.data?.spec;
  return (
    <section>
      <h2>
        {name} <a href={`#/autoscaling/${encodeURIComponent(name)}`}>autoscaling</a>
      </h2>
      <ErrorBox error={service.error ?? status.error} />
      {spec && (
        <p>
          image <code>{spec.image}</code>, revision {num(service.data.revision)}, {spec.replicas ?? 0}{" "}
          replicas wanted; {enumName(service.data.status?.phase, "SERVICE_PHASE_")}{" "}
          {service.data.status?.message}
        </p>
      )}
      <h3>Revisions and tasks</h3>
      <table id="revisions">
        <thead>
          <tr>
            <th>revision</th>
            <th>running / desired</th>
            <th>healthy</th>
            <th>traffic %</th>
            <th>req/s</th>
            <th>tasks (node: health)</th>
          </tr>
        </thead>
        <tbody>
          {(status.data?.revisions ?? []).map((r: any) => (
            <tr data-revision={num(r.revision)}>
              <td>{num(r.revision)}</td>
              <td>
                {r.running ?? 0} / {r.desired ?? 0}
              </td>
              <td>
                {r.healthy ?? 0}
                {r.unhealthy ? ` (${r.unhealthy} unhealthy)` : ""}
                {r.unknown ? ` (${r.unknown} unknown)` : ""}
              </td>
              <td>{r.trafficWeight !== undefined ? r.trafficWeight.toFixed(0) : "-"}</td>
              <td>{(r.requestsPerSecond ?? 0).toFixed(1)}</td>
              <td>
                {(r.tasks ?? []).map((t: any) => (
                  <span class={`task ${healthClass(t.health)}`} title={t.taskId}>
                    {hostOf(t.nodeId)}: {t.health}
                  </span>
                ))}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      <h3>Release</h3>
      <div class="form">
        <input
          id="release-image"
          placeholder="new image, e.g. hosting/appsvc:v2"
          value={image}
          onInput={(e) => setImage((e.target as HTMLInputElement).value)}
        />
        <select
          id="release-strategy"
          value={strategy}
          onChange={(e) => setStrategy((e.target as HTMLSelectElement).value)}
        >
          <option value="RELEASE_STRATEGY_CANARY">canary</option>
          <option value="RELEASE_STRATEGY_ROLLING">rolling</option>
          <option value="RELEASE_STRATEGY_BLUE_GREEN">blue-green</option>
        </select>
        <Action
          id="start-release"
          label="Start release"
          action={() =>
            call("Releases", "StartRelease", {
              service: name,
              image,
              policy: { ...(spec?.release ?? {}), strategy },
            })
          }
          onDone={go}
        />
        <Action
          id="rollback"
          label="Roll back"
          kind="danger"
          action={() => call("Releases", "RollbackService", { service: name })}
          onDone={go}
        />
      </div>
      <table id="releases">
        <thead>
          <tr>
            <th>release</th>
            <th>strategy</th>
            <th>revisions</th>
            <th>state</th>
            <th>message</th>
          </tr>
        </thead>
        <tbody>
          {(releases.data?.releases ?? []).map((r: any) => (
            <tr>
              <td>
                <a href={`#/releases/${encodeURIComponent(r.id)}`}>{r.id}</a>
              </td>
              <td>{enumName(r.strategy, "RELEASE_STRATEGY_")}</td>
              <td>
                {num(r.fromRevision)} &rarr; {num(r.toRevision)}
              </td>
              <td>{enumName(r.state, "RELEASE_STATE_")}</td>
              <td>{r.message}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}

// --- A release, live ---

const TERMINAL = ["SUCCEEDED", "ROLLED_BACK", "FAILED", "ABORTED", "TIMED_OUT"];

export function ReleaseView({ id }: { id: string }) {
  const [release, setRelease] = useState<any>(null);
  const [events, setEvents] = useState<any[]>([]);
  const [error, setError] = useState<ApiError | null>(null);
  const [ended, setEnded] = useState(false);
  useEffect(() => {
    call("Releases", "GetRelease", { id }).then(setRelease, setError);
    const s = stream<any>("Releases", "WatchRelease", { id }, {
      onMessage: (e) => {
        if (e.release) setRelease(e.release);
        setEvents((list) => [e, ...list].slice(0, MAX_EVENTS));
      },
      onEnd: () => setEnded(true),
      onError: (e, fatal) => fatal && setError(e),
    });
    return () => s.close();
  }, [id]);
  const state = (release?.state ?? "").replace("RELEASE_STATE_", "");
  const weight = release?.weight ?? 0;
  // A canary's baseline (a fresh copy of the stable revision) takes the canary's share, as far
  // as the rest of the traffic allows (ReleaseMachine's BaselineWeight).
  const hasBaseline = Number(release?.baselineRevision ?? 0) > 0;
  const baselineWeight = hasBaseline ? Math.max(0, Math.min(weight, 100 - weight, 50)) : 0;
  const stableWeight = 100 - weight - baselineWeight;
  const terminal = TERMINAL.includes(state);
  const act = (method: string, extra: object = {}) => () =>
    call("Releases", method, { id, ...extra }).then(setRelease);
  return (
    <section>
      <h2>
        Release {id}{" "}
        {release && (
          <a href={`#/services/${encodeURIComponent(release.service)}`}>{release.service}</a>
        )}
      </h2>
      <ErrorBox error={error} />
      {release && (
        <div>
          <p>
            <span id="release-state" class={`state ${state.toLowerCase()}`}>
              {state.toLowerCase().replace(/_/g, " ")}
            </span>{" "}
            {enumName(release.strategy, "RELEASE_STRATEGY_")}, revision {num(release.fromRevision)}{" "}
            &rarr; {num(release.toRevision)}, step {(release.currentStep ?? 0) + 1} of{" "}
            {release.totalSteps ?? 0}
            {release.rollback ? " (a rollback)" : ""}
            {ended ? " - finished" : ""}
          </p>
          <p id="release-message">{release.message}</p>
          <div class="weights" id="weights">
            <div class="bar">
              <div class="stable" style={{ width: `${stableWeight}%` }}>
                r{num(release.fromRevision)} {stableWeight.toFixed(0)}%
              </div>
              {hasBaseline && (
                <div class="baseline" id="baseline" style={{ width: `${baselineWeight}%` }}>
                  r{num(release.baselineRevision)} baseline {baselineWeight.toFixed(0)}%
                </div>
              )}
              <div class="canary" style={{ width: `${weight}%` }}>
                r{num(release.toRevision)} {weight.toFixed(0)}%
              </div>
            </div>
            <small>
              <span id="weight">{weight.toFixed(0)}</span>% to the new revision (
              {release.exactWeights ? "exact, through HAProxy" : "by replica ratio"}); new tasks{" "}
              {release.newHealthy ?? 0}/{release.newReplicas ?? 0} healthy, stable{" "}
              {release.stableReplicas ?? 0}
            </small>
          </div>
          <div class="buttons">
            {!terminal && (
              <>
                <Action id="promote" label="Promote" action={act("PromoteRelease")} />
                <Action id="promote-full" label="Promote fully" action={act("PromoteRelease", { full: true })} />
                {state === "PAUSED" ? (
                  <Action id="resume" label="Resume" action={act("ResumeRelease")} />
                ) : (
                  <Action id="pause" label="Pause" action={act("PauseRelease")} />
                )}
                <Action id="abort" label="Abort" kind="danger" action={act("AbortRelease")} />
              </>
            )}
            {terminal && (
              <Action
                id="rollback"
                label="Roll back the service"
                kind="danger"
                action={() => call("Releases", "RollbackService", { service: release.service })}
                onDone={(r) => (location.hash = `#/releases/${encodeURIComponent(r.id)}`)}
              />
            )}
          </div>
          <h3>Analyses</h3>
          <table id="analyses">
            <thead>
              <tr>
                <th>kind</th>
                <th>verdict</th>
                <th>reason</th>
                <th>metrics (canary / stable or baseline / threshold)</th>
              </tr>
            </thead>
            <tbody>
              {(release.analyses ?? []).map((a: any) => (
                <tr>
                  <td>{a.kind}</td>
                  <td class={`verdict ${enumName(a.verdict, "ANALYSIS_VERDICT_")}`}>
                    {enumName(a.verdict, "ANALYSIS_VERDICT_")}
                  </td>
                  <td>{a.reason}</td>
                  <td>
                    {(a.metrics ?? []).map((m: any) => (
                      <div>
                        {m.metric}: {(m.canary ?? 0).toFixed(3)} / {a.baseline ? "baseline " : ""}
                        {(m.stable ?? 0).toFixed(3)} /{" "}
                        {(m.threshold ?? 0).toFixed(3)} ({enumName(m.verdict, "ANALYSIS_VERDICT_")})
                      </div>
                    ))}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      <h3>Events</h3>
      <ul class="events" id="release-events">
        {events.map((e) => (
          <li>
            <span class="time">{when(e.time)}</span> <code>{e.type}</code> {e.message}
          </li>
        ))}
      </ul>
    </section>
  );
}

// --- Autoscaling ---

type Sample = { t: number; value: number; target: number; replicas: number };

export function AutoscalingView({ service }: { service: string }) {
  const policy = usePoll(() => call("Autoscaling", "GetPolicy", { service }), 10000, [service]);
  const status = usePoll(() => call("Autoscaling", "GetStatus", { service }), 2000, [service]);
  const samples = useRef<Sample[]>([]);
  const [, redraw] = useState(0);
  useEffect(() => {
    const s = status.data;
    if (!s) return;
    const rec = (s.recommendations ?? [])[0];
    if (!rec) return;
    samples.current = [
      ...samples.current,
      {
        t: Date.now(),
        value: rec.missing ? NaN : (rec.value ?? 0),
        target: rec.metric?.target ?? 0,
        replicas: s.currentReplicas ?? 0,
      },
    ].slice(-MAX_SAMPLES);
    redraw((n) => n + 1);
  }, [status.data]);
  const s = status.data;
  const metric = (s?.recommendations ?? [])[0]?.metric;
  return (
    <section>
      <h2>
        Autoscaling <a href={`#/services/${encodeURIComponent(service)}`}>{service}</a>
      </h2>
      <ErrorBox error={policy.error ?? status.error} />
      {policy.data && (
        <p>
          {policy.data.minReplicas ?? 0} to {policy.data.maxReplicas ?? 0} replicas
          {metric ? `, ${enumName(metric.kind, "METRIC_KIND_")} target ${metric.target}` : ""}
        </p>
      )}
      {s && (
        <p id="autoscaling-now">
          <span id="replicas">{s.currentReplicas ?? 0}</span> replicas ({s.readyReplicas ?? 0}{" "}
          ready), wanted {s.desiredReplicas ?? 0}. {s.message}
        </p>
      )}
      <Chart
        id="autoscaling-chart"
        samples={samples.current}
        series={[
          { key: "value", label: "metric", color: "#2563eb" },
          { key: "target", label: "target", color: "#9ca3af", dashed: true },
          { key: "replicas", label: "replicas", color: "#16a34a", right: true },
        ]}
      />
      <h3>Last decisions</h3>
      <table id="decisions">
        <thead>
          <tr>
            <th>time</th>
            <th>replicas</th>
            <th>reason</th>
          </tr>
        </thead>
        <tbody>
          {[...(s?.history ?? [])].reverse().map((d: any) => (
            <tr>
              <td>{when(d.time)}</td>
              <td>
                {d.fromReplicas ?? 0} &rarr; {d.toReplicas ?? 0}
                {d.shadow ? " (shadow)" : ""}
                {d.forecast ? " (forecast)" : ""}
              </td>
              <td>{d.reason}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}

// --- Nodes ---

export function NodesView() {
  const { data, error } = usePoll(() => call("Cluster", "ListNodes"), 3000);
  return (
    <section>
      <h2>Nodes and agents</h2>
      <ErrorBox error={error} />
      <table id="nodes">
        <thead>
          <tr>
            <th>hostname</th>
            <th>role</th>
            <th>availability</th>
            <th>state</th>
            <th>agent</th>
            <th>tasks</th>
            <th>address</th>
          </tr>
        </thead>
        <tbody>
          {(data?.nodes ?? []).map((n: any) => (
            <tr data-node={n.hostname}>
              <td>{n.hostname}</td>
              <td>{n.role}</td>
              <td>{enumName(n.availability, "NODE_AVAILABILITY_")}</td>
              <td>{n.state}</td>
              <td class={n.agentState === "AGENT_STATE_CONNECTED" ? "ok" : "bad"}>
                {enumName(n.agentState, "AGENT_STATE_")} {n.agentVersion ?? ""}
              </td>
              <td>{n.runningTasks ?? 0}</td>
              <td>{n.address}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}

// --- Runbooks ---

export function RunbooksView() {
  const runbooks = usePoll(() => call("Runbooks", "ListRunbooks"), 30000);
  const runs = usePoll(() => call("Runbooks", "ListRuns", { limit: 30 }), 3000);
  return (
    <section>
      <h2>Runbook runs</h2>
      <ErrorBox error={runs.error} />
      <table id="runs">
        <thead>
          <tr>
            <th>run</th>
            <th>runbook</th>
            <th>target</th>
            <th>state</th>
            <th>started by</th>
            <th>message</th>
          </tr>
        </thead>
        <tbody>
          {(runs.data?.runs ?? []).map((r: any) => (
            <tr>
              <td>
                <a href={`#/runs/${encodeURIComponent(r.id)}`}>{r.id}</a>
              </td>
              <td>{r.runbook}</td>
              <td>{r.target}</td>
              <td>{enumName(r.state, "RUN_STATE_")}</td>
              <td>{r.startedBy}</td>
              <td>{r.message}</td>
            </tr>
          ))}
        </tbody>
      </table>
      <h3>Runbooks</h3>
      <ul>
        {(runbooks.data?.runbooks ?? []).map((r: any) => (
          <li>
            <code>{r.name}</code> {r.description}
          </li>
        ))}
      </ul>
      <p>Start one with hostctl runbook run NAME -p key=value.</p>
    </section>
  );
}

export function RunView({ id }: { id: string }) {
  const [run, setRun] = useState<any>(null);
  const [error, setError] = useState<ApiError | null>(null);
  useEffect(() => {
    const s = stream<any>("Runbooks", "WatchRun", { id }, {
      onMessage: setRun,
      onError: (e, fatal) => fatal && setError(e),
    });
    return () => s.close();
  }, [id]);
  const waiting = run?.state === "RUN_STATE_WAITING_APPROVAL";
  const ended = ["RUN_STATE_SUCCEEDED", "RUN_STATE_FAILED", "RUN_STATE_CANCELLED"].includes(
    run?.state,
  );
  return (
    <section>
      <h2>
        Run {id} {run && <code>{run.runbook}</code>}
      </h2>
      <ErrorBox error={error} />
      {run && (
        <div>
          <p>
            <span id="run-state">{enumName(run.state, "RUN_STATE_")}</span> {run.message}
          </p>
          <div class="buttons">
            {waiting && (
              <Action id="approve" label="Approve" action={() => call("Runbooks", "ApproveRun", { id })} />
            )}
            {!ended && (
              <Action
                id="cancel"
                label="Cancel"
                kind="danger"
                action={() => call("Runbooks", "CancelRun", { id, reason: "cancelled from the console" })}
              />
            )}
          </div>
          <ol class="steps" id="steps">
            {(run.steps ?? []).map((s: any) => (
              <li class={enumName(s.state, "RUN_STATE_")}>
                <strong>{s.name}</strong> {enumName(s.state, "RUN_STATE_")}
                {s.attempts ? ` (attempt ${s.attempts}/${s.maxAttempts ?? 1})` : ""} {s.detail}
                {s.output && <pre>{s.output}</pre>}
              </li>
            ))}
          </ol>
          {run.outputs && Object.keys(run.outputs).length > 0 && (
            <dl>
              {Object.entries(run.outputs).map(([k, v]) => (
                <>
                  <dt>{k}</dt>
                  <dd>{String(v)}</dd>
                </>
              ))}
            </dl>
          )}
        </div>
      )}
    </section>
  );
}

// --- Events ---

export function EventsView() {
  const [events, setEvents] = useState<any[]>([]);
  const [error, setError] = useState<ApiError | null>(null);
  useEffect(() => {
    const s = stream<any>("Cluster", "WatchEvents", {}, {
      onMessage: (e) => setEvents((list) => [e, ...list].slice(0, MAX_EVENTS)),
      onError: (e) => setError(e),
    });
    return () => s.close();
  }, []);
  return (
    <section>
      <h2>Events (live)</h2>
      <ErrorBox error={error} />
      <ul class="events" id="events">
        {events.map((e) => (
          <li>
            <span class="time">{when(e.time)}</span> <code>{e.type}</code>{" "}
            {e.service && <a href={`#/services/${encodeURIComponent(e.service)}`}>{e.service}</a>}{" "}
            {e.message}
          </li>
        ))}
      </ul>
    </section>
  );
}
