// The console's shell: log in with a token, then a view per hash route. Every view reads
// hostd's HTTP/JSON gateway (api.ts); live views follow one server stream each.
import { render } from "preact";
import { useEffect, useState } from "preact/hooks";
import { ApiError, call, setToken, token } from "./api";
import "./style.css";
import {
  AutoscalingView,
  EventsView,
  NodesView,
  ReleaseView,
  RunView,
  RunbooksView,
  ServiceView,
  ServicesView,
} from "./views";

interface Identity {
  principal?: string;
  role?: string;
  authEnabled?: boolean;
}

function useHashRoute(): string[] {
  const read = () => (location.hash.replace(/^#\/?/, "") || "services").split("/").map(decodeURIComponent);
  const [route, setRoute] = useState(read());
  useEffect(() => {
    const onChange = () => setRoute(read());
    window.addEventListener("hashchange", onChange);
    return () => window.removeEventListener("hashchange", onChange);
  }, []);
  return route;
}

function Login({ onLogin }: { onLogin: (who: Identity) => void }) {
  const [value, setValue] = useState("");
  const [error, setError] = useState("");
  const submit = async (e: Event) => {
    e.preventDefault();
    setToken(value.trim());
    try {
      onLogin(await call<Identity>("Auth", "WhoAmI"));
    } catch (err) {
      setToken("");
      setError(err instanceof ApiError ? `${err.status}: ${err.message}` : String(err));
    }
  };
  return (
    <form class="login" onSubmit={submit}>
      <h1>hosting</h1>
      <p>A hostd token (hostctl token create, or /var/lib/hosting/admin.token).</p>
      <input
        id="token"
        type="password"
        placeholder="hst_..."
        value={value}
        onInput={(e) => setValue((e.target as HTMLInputElement).value)}
        autoFocus
      />
      <button id="login" type="submit">
        Log in
      </button>
      {error && <div class="error" id="login-error">{error}</div>}
    </form>
  );
}

function App() {
  const [who, setWho] = useState<Identity | null>(null);
  const [checked, setChecked] = useState(false);
  const route = useHashRoute();
  useEffect(() => {
    if (!token()) {
      setChecked(true);
      return;
    }
    call<Identity>("Auth", "WhoAmI")
      .then(setWho)
      .catch(() => setToken(""))
      .finally(() => setChecked(true));
  }, []);
  if (!checked) return null;
  if (!who) return <Login onLogin={setWho} />;
  const [view, arg] = route;
  const nav: [string, string][] = [
    ["services", "Services"],
    ["nodes", "Nodes"],
    ["runbooks", "Runbooks"],
    ["events", "Events"],
  ];
  return (
    <div class="shell">
      <header>
        <strong>hosting</strong>
        <nav>
          {nav.map(([href, label]) => (
            <a href={`#/${href}`} class={view === href ? "active" : ""}>
              {label}
            </a>
          ))}
        </nav>
        <span class="who" id="who">
          {who.principal} ({(who.role ?? "").replace("ROLE_", "").toLowerCase()})
        </span>
        <button
          class="link"
          onClick={() => {
            setToken("");
            setWho(null);
          }}
        >
          Log out
        </button>
      </header>
      <main>
        {view === "services" && !arg && <ServicesView />}
        {view === "services" && arg && <ServiceView name={arg} key={arg} />}
        {view === "releases" && arg && <ReleaseView id={arg} key={arg} />}
        {view === "autoscaling" && arg && <AutoscalingView service={arg} key={arg} />}
        {view === "nodes" && <NodesView />}
        {view === "runbooks" && !arg && <RunbooksView />}
        {view === "runs" && arg && <RunView id={arg} key={arg} />}
        {view === "events" && <EventsView />}
      </main>
    </div>
  );
}

render(<App />, document.getElementById("app")!);
