// "Log a group activity": the totals given and received, worked out as one types (the server
// works them out again on the check step, and the ledger refuses totals that differ).
// Words come from data attributes of #group-totals, rendered through gettext.
const totals = document.getElementById("group-totals");

function fill(template, values) {
  return template.replace(/%\((\w+)\)s/g, (_, key) => String(values[key]));
}

function inWords(minutes) {
  const texts = totals.dataset;
  const hours = Math.floor(minutes / 60);
  const rest = minutes % 60;
  const hoursText = fill(hours === 1 ? texts.hour : texts.hours, { num: hours });
  const minutesText = fill(rest === 1 ? texts.minute : texts.minutes, { num: rest });
  if (rest === 0) return hoursText;
  if (hours === 0) return minutesText;
  return fill(texts.both, { hours: hoursText, minutes: minutesText });
}

function number(input) {
  const value = input ? input.value.trim() : "";
  return /^\d{1,6}$/.test(value) ? Number(value) : 0;
}

function sideTotal(side) {
  let total = 0;
  document.querySelectorAll(`[data-side="${side}"] [data-row]`).forEach((row) => {
    total += number(row.querySelector('[data-amount="hours"]')) * 60 + number(row.querySelector('[data-amount="minutes"]'));
  });
  return total;
}

function show() {
  const given = sideTotal("giver");
  const received = sideTotal("receiver");
  const texts = totals.dataset;
  const sentence = fill(texts.totals, { given: inWords(given), received: inWords(received) });
  totals.textContent = `${sentence} ${given === received ? texts.match : texts.differ}`;
  totals.hidden = false;
}

if (totals) {
  document.querySelectorAll("[data-amount]").forEach((input) => input.addEventListener("input", show));
  show();
}
