// The idle-timeout warning (WCAG 2.2.1). The server ends a session after
// TIMEBANK_SESSION_IDLE_MINUTES without a request; the page says how many seconds
// are left (data-idle-seconds-left). A few minutes before, a dialog offers
// "Stay signed in", which posts to /keep-alive in the background, so whatever
// the person typed stays on the page. Without JavaScript the server still signs
// people out on time.
const body = document.body;
const dialog = document.getElementById("idle-warning");
const form = document.getElementById("idle-warning-form");
const secondsLeft = Number(body.dataset.idleSecondsLeft);
const warningSeconds = Number(body.dataset.idleWarningSeconds);

let warnTimer;
let endTimer;

function schedule(seconds) {
  clearTimeout(warnTimer);
  clearTimeout(endTimer);
  warnTimer = setTimeout(warn, Math.max(seconds - warningSeconds, 0) * 1000);
  // At the deadline the session has ended on the server: show the sign-in page, which says why.
  endTimer = setTimeout(() => window.location.assign("/"), (seconds + 1) * 1000);
}

function warn() {
  if (!dialog.open) {
    dialog.showModal();
  }
}

async function staySignedIn(event) {
  event.preventDefault();
  const response = await fetch(form.action, {
    method: "POST",
    body: new FormData(form),
    credentials: "same-origin",
    headers: { Accept: "application/json" },
  });
  if (response.ok) {
    const answer = await response.json();
    dialog.close();
    schedule(answer.seconds_left);
  } else {
    window.location.assign("/");
  }
}

if (dialog && form && Number.isFinite(secondsLeft)) {
  form.addEventListener("submit", staySignedIn);
  // Escape closes a modal dialog; treat it as "Stay signed in" rather than leave the timer running silently.
  dialog.addEventListener("cancel", (event) => staySignedIn(event));
  schedule(secondsLeft);
}
