// The todo web client. The refresh token lives in an HttpOnly cookie that this script
// cannot read (cookie mode, /auth/browser/...); the access token only in a variable.
"use strict";

(() => {
  const LOGGED_OUT = "You have been logged out. Please log in again.";
  // Every cookie route refuses a request without it (CSRF), see docs/web-client.md.
  const COOKIE_ROUTE_HEADERS = { "X-Requested-With": "fetch" };
  // Access tokens refused for these reasons are worth one refresh and one retry.
  const RETRY_AFTER_REFRESH = new Set(["token_expired", "invalid_token"]);
  // Refresh this long before the access token expires (a fifth of its life if shorter).
  const REFRESH_EARLY_MS = 30_000;

  const $ = (id) => document.getElementById(id);
  // Tells this browser's other tabs at once; without it they learn on their next request.
  const channel = "BroadcastChannel" in window ? new BroadcastChannel("todo-session") : null;

  let accessToken = null; // memory only: never localStorage, sessionStorage or a cookie
  let refreshTimer = 0;
  let refreshing = null; // the refresh in flight, shared by every request that needs one

  class ApiError extends Error {
    constructor(status, body) {
      super((body && body.error) || `The server answered ${status}.`);
      this.status = status;
      this.code = body && body.code;
    }
  }

  // Raised once the page has gone back to the sign-in form: nothing more to show.
  class SignedOut extends Error {}

  async function send(method, path, { body, headers = {} } = {}) {
    const init = { method, headers: { Accept: "application/json", ...headers } };
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    let response;
    try {
      response = await fetch(path, init);
    } catch {
      throw new ApiError(0, { error: "Cannot reach the server. Please try again." });
    }
    const text = await response.text();
    let data = null;
    try {
      data = text ? JSON.parse(text) : null;
    } catch {
      data = null;
    }
    if (!response.ok) throw new ApiError(response.status, data);
    return data;
  }

  const cookieRoute = (name, body) =>
    send("POST", `/auth/browser/${name}`, { body, headers: COOKIE_ROUTE_HEADERS });

  // A protected request with the access token: refreshed first if there is none, and
  // once more if the server refuses it as expired or invalid.
  async function api(method, path, body) {
    for (let attempt = 0; ; attempt += 1) {
      if (!accessToken) await refresh();
      const used = accessToken;
      try {
        return await send(method, path, { body, headers: { Authorization: `Bearer ${used}` } });
      } catch (error) {
        if (error.status !== 401) throw error;
        if (attempt > 0 || !RETRY_AFTER_REFRESH.has(error.code)) {
          // session_revoked: logged out elsewhere, by an administrator, or everywhere.
          signedOut(LOGGED_OUT);
          throw new SignedOut();
        }
        // Unless another request has refreshed meanwhile, the retry refreshes first.
        if (accessToken === used) accessToken = null;
      }
    }
  }

  // Rotate the cookie's refresh token for a new access token. Two tabs may do it at the
  // same moment: the server answers both with the same pair (its grace window).
  function refresh() {
    if (!refreshing) {
      refreshing = cookieRoute("refresh")
        .then((data) => useToken(data.access_token))
        .catch((error) => {
          if (error.status !== 401) throw error;
          signedOut(LOGGED_OUT);
          throw new SignedOut();
        })
        .finally(() => {
          refreshing = null;
        });
    }
    return refreshing;
  }

  function claims(token) {
    const part = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    return JSON.parse(atob(part.padEnd(Math.ceil(part.length / 4) * 4, "=")));
  }

  function useToken(token) {
    accessToken = token;
    clearTimeout(refreshTimer);
    // From the token's own lifetime rather than exp against this machine's clock,
    // which may be off; a late timer only costs a 401 and a retry.
    const { iat, exp } = claims(token);
    const life = (exp - iat) * 1000;
    const delay = Math.max(life - Math.min(REFRESH_EARLY_MS, life / 5), 1000);
    refreshTimer = setTimeout(() => refresh().catch(showError), delay);
  }

  // --- what the page shows -------------------------------------------------------------

  function show(state) {
    $("loading").hidden = true;
    $("signed-out").hidden = state !== "signed-out";
    $("signed-in").hidden = state !== "signed-in";
    $("account").hidden = state !== "signed-in";
  }

  function say(text) {
    $("notice").textContent = text;
    $("notice").hidden = !text;
    $("error").hidden = true;
  }

  function showError(error) {
    if (error instanceof SignedOut) return;
    $("error").textContent = error.message;
    $("error").hidden = false;
  }

  function signedOut(message, { tell = true } = {}) {
    const wasSignedIn = accessToken !== null || !$("signed-in").hidden;
    accessToken = null;
    clearTimeout(refreshTimer);
    $("todos").replaceChildren();
    $("sessions").replaceChildren();
    show("signed-out");
    say(message);
    if (wasSignedIn) $("sign-in-username").focus();
    if (tell && channel) channel.postMessage("signed-out");
  }

  async function signedIn() {
    show("signed-in");
    $("signed-in").setAttribute("aria-busy", "true");
    try {
      await Promise.all([loadTodos(), loadSessions()]);
    } finally {
      $("signed-in").setAttribute("aria-busy", "false");
    }
  }

  function element(tag, { text, className, ...attributes } = {}, children = []) {
    const node = document.createElement(tag);
    if (text !== undefined) node.textContent = text; // text, never HTML
    if (className) node.className = className;
    for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
    node.append(...children);
    return node;
  }

  async function loadTodos() {
    const todos = await api("GET", "/todos");
    $("todos").replaceChildren(...todos.map(todoItem));
    $("no-todos").hidden = todos.length > 0;
  }

  function todoItem(todo) {
    const box = element("input", { type: "checkbox", id: `todo-${todo.id}` });
    box.checked = todo.done;
    box.addEventListener("change", () =>
      run(async () => {
        await api("PATCH", `/todos/${todo.id}`, { done: box.checked });
        await loadTodos();
      }),
    );
    const remove = element("button", {
      type: "button",
      text: "Delete",
      className: "quiet",
      "aria-label": `Delete “${todo.title}”`,
    });
    remove.addEventListener("click", () =>
      run(async () => {
        await api("DELETE", `/todos/${todo.id}`);
        await loadTodos();
      }),
    );
    const label = element("label", { for: box.id, text: todo.title });
    return element("li", { className: todo.done ? "todo done" : "todo" }, [box, label, remove]);
  }

  async function loadSessions() {
    const sessions = await api("GET", "/auth/sessions");
    $("sessions").replaceChildren(...sessions.map(sessionItem));
  }

  function sessionItem(session) {
    const when = (iso) => new Date(iso).toLocaleString();
    const name = element("strong", { text: session.device || session.user_agent || "Unknown" });
    let text = `Signed in ${when(session.created_at)} from ${session.ip_address || "unknown"}`;
    if (session.last_refreshed_at) text += ` · active ${when(session.last_refreshed_at)}`;
    const details = element("span", { className: "muted", text });
    const about = element("div", {}, [name, details]);
    if (session.current) {
      return element("li", { className: "session current" }, [
        about,
        element("span", { className: "badge", text: "This browser" }),
      ]);
    }
    const revoke = element("button", {
      type: "button",
      text: "Revoke",
      className: "quiet",
      "aria-label": `Revoke the session of ${name.textContent}`,
    });
    revoke.addEventListener("click", () =>
      run(async () => {
        await api("DELETE", `/auth/sessions/${session.id}`);
        await loadSessions();
        say("Session revoked.");
      }),
    );
    return element("li", { className: "session" }, [about, revoke]);
  }

  // Run a user's action: clear old messages, show the API's own error text on failure.
  async function run(action) {
    $("error").hidden = true;
    try {
      await action();
    } catch (error) {
      showError(error);
    }
  }

  // --- actions -------------------------------------------------------------------------

  function onSubmit(id, action) {
    $(id).addEventListener("submit", (event) => {
      event.preventDefault();
      const button = event.target.querySelector("button[type=submit]");
      button.disabled = true;
      run(() => action(event.target)).finally(() => {
        button.disabled = false;
      });
    });
  }

  const credentials = (form) => ({
    username: form.elements.username.value,
    password: form.elements.password.value,
  });

  onSubmit("sign-in", async (form) => {
    const data = await cookieRoute("login", credentials(form));
    form.reset();
    useToken(data.access_token);
    say("");
    await signedIn();
    $("new-title").focus();
    if (channel) channel.postMessage("signed-in");
  });

  onSubmit("sign-up", async (form) => {
    const { username, password } = credentials(form);
    const data = await send("POST", "/auth/signup", { body: { username, password } });
    form.reset();
    say(data.message);
    $("sign-in-username").value = username;
    $("sign-in-password").focus();
  });

  onSubmit("add-todo", async (form) => {
    await api("POST", "/todos", { title: form.elements.title.value });
    form.reset();
    await loadTodos();
  });

  $("reload-sessions").addEventListener("click", () => run(loadSessions));

  $("sign-out").addEventListener("click", () =>
    run(async () => {
      await cookieRoute("logout");
      signedOut("Signed out.");
    }),
  );

  $("sign-out-all").addEventListener("click", () =>
    run(async () => {
      const data = await api("POST", "/auth/logout-all", {});
      // Every session has ended, this one too; the cookie is cleared here.
      await cookieRoute("logout");
      const count = data.revoked === 1 ? "1 session" : `${data.revoked} sessions`;
      signedOut(`Signed out everywhere (${count} ended).`);
    }),
  );

  // Sign in with the cookie, if this browser has a live session; else the sign-in form,
  // without a message: a first visit has no cookie, and that is no error. On load the
  // page says whether there is a cookie at all (the server sees it; this script cannot),
  // so a first visit asks nothing; another tab's sign-in always tries.
  async function restore({ onLoad = false } = {}) {
    if (onLoad && document.body.dataset.session !== "yes") {
      show("signed-out");
      return;
    }
    let data;
    try {
      data = await cookieRoute("refresh");
    } catch (error) {
      accessToken = null;
      show("signed-out");
      if (error.status !== 401) showError(error);
      return;
    }
    useToken(data.access_token);
    await signedIn();
  }

  if (channel) {
    channel.addEventListener("message", ({ data }) => {
      if (data === "signed-out" && !$("signed-in").hidden) {
        signedOut(LOGGED_OUT, { tell: false });
      } else if (data === "signed-in") {
        run(restore);
      }
    });
  }

  // For the browser console and the tests: refresh now (the token itself stays inside).
  window.todoClient = Object.freeze({ refresh: () => refresh().then(() => undefined) });

  run(() => restore({ onLoad: true }));
})();
