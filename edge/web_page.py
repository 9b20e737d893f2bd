"""The web view's page: the annotated stream and a predictions table it polls.

When the newest prediction is stale (the source stopped delivering), the page says
"no signal since HH:MM:SS" and dims the last frame instead of showing it as live.
"""

PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>tledge edge</title>
<style>
  body { font-family: system-ui, sans-serif; background: #111; color: #eee; margin: 1rem; }
  main { display: flex; flex-wrap: wrap; gap: 1rem; align-items: flex-start; }
  img { max-width: 100%; border: 1px solid #333; }
  img.stale { opacity: 0.35; }
  table { border-collapse: collapse; min-width: 16rem; }
  td { padding: 0.2rem 0.6rem; border-bottom: 1px solid #333; }
  td.score { text-align: right; font-variant-numeric: tabular-nums; }
  #status { color: #aaa; margin-top: 0.5rem; }
  #status.stale { color: #f66; }
</style>
</head>
<body>
<h1>tledge edge</h1>
<main>
  <img id="stream" src="stream.mjpg" alt="annotated camera stream">
  <section>
    <table id="predictions"><tbody></tbody></table>
    <div id="status">waiting for predictions...</div>
  </section>
</main>
<script>
function clock(seconds) {
  return new Date(seconds * 1000).toTimeString().slice(0, 8);
}
async function refresh() {
  const status = document.getElementById("status");
  const stream = document.getElementById("stream");
  try {
    const response = await fetch("predictions.json", {cache: "no-store"});
    if (!response.ok) {
      status.textContent = `the view answered ${response.status}; reopen the link with its token`;
      return;
    }
    const data = await response.json();
    const rows = (data.top_k || []).map(item =>
      `<tr><td class="label"></td><td class="score">${(item.score * 100).toFixed(1)}%</td></tr>`);
    const body = document.querySelector("#predictions tbody");
    body.innerHTML = rows.join("");
    (data.top_k || []).forEach((item, i) => {
      body.rows[i].cells[0].textContent = item.label;
    });
    stream.classList.toggle("stale", Boolean(data.stale));
    status.classList.toggle("stale", Boolean(data.stale));
    if (data.stale) {
      status.textContent = `no signal since ${clock(data.timestamp)}`;
    } else if (data.frame !== undefined) {
      const fps = data.fps ? `${data.fps.toFixed(1)} FPS` : "";
      status.textContent = `frame ${data.frame} | ${data.timings_ms.invoke.toFixed(1)} ms | ${fps}`;
    }
  } catch (error) {
    status.textContent = "connection lost, retrying...";
  }
}
setInterval(refresh, 500);
refresh();
</script>
</body>
</html>
"""
