"""The page of `tledge capture --serve`: live stream, one button per class, counts."""

CAPTURE_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>tledge capture</title>
<style>
  body { font-family: system-ui, sans-serif; background: #111; color: #eee; margin: 1rem; }
  main { display: flex; flex-wrap: wrap; gap: 1rem; align-items: flex-start; }
  img { max-width: 100%; border: 1px solid #333; }
  button { font-size: 1.1rem; margin: 0.2rem; padding: 0.5rem 0.8rem; }
  #classes button .key { color: #888; margin-right: 0.4rem; }
  #status { color: #aaa; margin-top: 0.5rem; min-height: 1.2rem; }
  #status.error { color: #f66; }
</style>
</head>
<body>
<h1>tledge capture</h1>
<main>
  <img id="stream" src="stream.mjpg" alt="camera stream">
  <section>
    <div id="classes"></div>
    <form id="new-class">
      <input id="new-name" placeholder="new class" maxlength="64" autocomplete="off">
      <button type="submit">Add and capture</button>
    </form>
    <div id="status">press a button or a key 1-9 to save the current frame</div>
  </section>
</main>
<script>
let labels = [];
function showCounts(counts) {
  labels = Object.keys(counts);
  const box = document.getElementById("classes");
  box.replaceChildren(...labels.map((label, i) => {
    const button = document.createElement("button");
    button.dataset.label = label;
    const key = document.createElement("span");
    key.className = "key";
    key.textContent = i < 9 ? String(i + 1) : "";
    button.append(key, `${label} (${counts[label]})`);
    button.addEventListener("click", () => capture(label));
    return button;
  }));
}
function status(text, isError) {
  const line = document.getElementById("status");
  line.textContent = text;
  line.className = isError ? "error" : "";
}
async function capture(label) {
  try {
    const response = await fetch("capture", {
      method: "POST", headers: {"Content-Type": "application/json"},
      body: JSON.stringify({label: label})});
    const data = await response.json();
    if (data.counts) showCounts(data.counts);
    if (response.ok) status(`saved ${label}/${data.saved}`, false);
    else status(data.error || "not saved", true);
  } catch (error) {
    status("connection lost, retrying...", true);
  }
}
async function refresh() {
  try {
    const response = await fetch("predictions.json", {cache: "no-store"});
    const data = await response.json();
    if (data.counts && Object.keys(data.counts).join() !== labels.join()) showCounts(data.counts);
  } catch (error) {
    status("connection lost, retrying...", true);
  }
}
document.getElementById("new-class").addEventListener("submit", event => {
  event.preventDefault();
  const name = document.getElementById("new-name").value.trim();
  if (name) capture(name);
  document.getElementById("new-name").value = "";
});
document.addEventListener("keydown", event => {
  if (event.target.tagName === "INPUT") return;
  const index = "123456789".indexOf(event.key);
  if (index >= 0 && index < labels.length) capture(labels[index]);
});
setInterval(refresh, 1000);
refresh();
</script>
</body>
</html>
"""
