/**
 * The demo page's HTML, which the relay serves at `/`. Its script, `/demo.js`, is `worker/demo/page.ts` bundled by
 * `scripts/build-demo.ts` and served as a static asset. Plain DOM, no framework: every control has a label, the
 * sync state and the chat are live regions.
 *
 * @module
 */

/**
 * The demo page: a shared chat and a shared key/value table in a room (`/?room=NAME`), with its sync state, and a
 * History tab with the room's DAG (`/?room=NAME#history` opens it).
 */
export const DEMO_HTML: string = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>hyperlog room</title>
<link rel="icon" href="data:,">
<style>
  :root { font-family: system-ui, sans-serif; color: #1d1d1f; background: #fafafa; }
  body { max-width: 46rem; margin: 0 auto; padding: 0.5rem 1rem 2rem; }
  h1 { font-size: 1.3rem; margin: 0.5rem 0; } h2 { font-size: 1.05rem; margin: 1rem 0 0.4rem; }
  #sync { display: flex; gap: 0.6rem; align-items: center; flex-wrap: wrap; font-size: 0.9rem; }
  #state { padding: 0.1rem 0.5rem; border-radius: 1rem; background: #ddd; font-weight: 600; }
  #state[data-state="live"] { background: #c8f0c8; } #state[data-state="offline"] { background: #f6d0c8; }
  #state[data-state="syncing"], #state[data-state="connecting"] { background: #f3e6b0; }
  #messages { list-style: none; padding: 0.4rem; margin: 0; min-height: 6rem; max-height: 18rem; overflow-y: auto;
    background: #fff; border: 1px solid #ccc; border-radius: 4px; }
  #messages li { padding: 0.15rem 0; } #messages .author { font-weight: 600; margin-right: 0.4rem; }
  #messages time { color: #777; font-size: 0.8rem; margin-left: 0.4rem; }
  form { display: flex; gap: 0.4rem; flex-wrap: wrap; align-items: end; margin-top: 0.5rem; }
  label { display: flex; flex-direction: column; font-size: 0.8rem; }
  input { font: inherit; padding: 0.25rem 0.4rem; } button { font: inherit; padding: 0.25rem 0.7rem; }
  table { border-collapse: collapse; width: 100%; background: #fff; }
  th, td { border: 1px solid #ccc; padding: 0.25rem 0.5rem; text-align: left; vertical-align: top; }
  .value { display: inline-block; padding: 0.05rem 0.4rem; margin: 0.1rem 0.3rem 0.1rem 0; border-radius: 3px;
    background: #eef; } tr.conflict .value { background: #fde2c0; }
  tr.conflict td:first-child::after { content: " (conflict)"; color: #a55; font-size: 0.8rem; }
  td button { font-size: 0.75rem; padding: 0 0.3rem; margin-right: 0.6rem; }
  footer { margin-top: 1.5rem; color: #666; font-size: 0.8rem; }
  [role=tablist] { display: flex; gap: 0.3rem; margin-top: 0.8rem; border-bottom: 1px solid #ccc; }
  [role=tab] { border: 1px solid #ccc; border-bottom: none; background: #eee; border-radius: 4px 4px 0 0; }
  [role=tab][aria-selected=true] { background: #fff; font-weight: 600; }
  #here { font-size: 0.9rem; margin-top: 0.3rem; } #people { display: inline; padding: 0; }
  #people li { display: inline-block; margin-right: 0.6rem; }
  .badge { background: #c8e0f8; border-radius: 1rem; padding: 0 0.4rem; font-size: 0.75rem; }
  #history { overflow: auto; max-height: 34rem; background: #fff; border: 1px solid #ccc; border-radius: 4px; }
</style>
</head>
<body>
<header>
  <h1>hyperlog room <q id="room">…</q></h1>
  <div id="sync">
    <span>Sync: <output id="state" role="status" aria-live="polite" data-state="connecting">loading</output></span>
    <span id="detail"></span>
    <button type="button" id="toggle">Go offline</button>
    <span id="counts"></span>
  </div>
  <div id="here">Here: <ul id="people" aria-live="polite" aria-label="Who else is in the room"></ul></div>
</header>
<nav role="tablist" aria-label="Views of the room">
  <button type="button" role="tab" id="tab-room" aria-selected="true" aria-controls="panel-room">Room</button>
  <button type="button" role="tab" id="tab-history" aria-selected="false" aria-controls="panel-history">History</button>
</nav>
<main>
 <div id="panel-room" role="tabpanel" aria-labelledby="tab-room">
  <section aria-labelledby="chat-title">
    <h2 id="chat-title">Chat</h2>
    <ol id="messages" aria-live="polite" aria-label="Messages, in causal order"></ol>
    <form id="chat-form">
      <label>Your name <input id="author" name="author" autocomplete="nickname" maxlength="40" required></label>
      <label>Message <input id="message" name="message" autocomplete="off" maxlength="2000" required></label>
      <button type="submit" id="send">Send</button>
    </form>
  </section>
  <section aria-labelledby="kv-title">
    <h2 id="kv-title">Shared table</h2>
    <table aria-describedby="kv-help">
      <thead><tr><th scope="col">Key</th><th scope="col">Value (concurrent values side by side)</th></tr></thead>
      <tbody id="kv"></tbody>
    </table>
    <p id="kv-help">Values set at the same time on two peers both stay until someone sets the key again.</p>
    <form id="kv-form">
      <label>Key <input id="kv-key" name="key" autocomplete="off" maxlength="100" required></label>
      <label>Value <input id="kv-value" name="value" autocomplete="off" maxlength="500" required></label>
      <button type="submit" id="kv-set">Set</button>
    </form>
  </section>
 </div>
 <section id="panel-history" role="tabpanel" aria-labelledby="tab-history" hidden>
  <h2>History</h2>
  <p>The room's DAG, newest first, heads on top (green): each node links to the nodes its writer had seen. Values
  set at once on two peers are two heads, a fork; the write that resolves them links to both, a merge.</p>
  <div id="history" aria-label="The latest nodes of the room's log, as a graph"></div>
 </section>
</main>
<footer>
  A hyperlog relay. Everything is kept in this browser (IndexedDB) and syncs through
  <code>/logs/ROOM/ws</code> when online. Other rooms: <code>/?room=NAME</code>; browser to browser over WebRTC as well:
  <code>/?room=NAME&amp;direct=1</code>. Reads: <code>/logs/NAME</code>,
  <code>/logs/NAME/nodes/KEY</code>, <code>/logs/NAME/changes?since=N</code>.
</footer>
<script type="module" src="/demo.js"></script>
</body>
</html>
`;
