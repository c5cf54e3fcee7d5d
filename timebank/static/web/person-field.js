// Person fields (templates/macros/person_field.html): with JavaScript, the plain text box
// becomes accessible-autocomplete, suggesting names from the page's people lookup as one
// types (names only, at most ten). Picking a suggestion puts its account in the hidden
// <name>_account_id; typing over it clears that again, and the server searches what was
// typed, as it does without JavaScript.
const autocomplete = window.accessibleAutocomplete;

function fill(template, values) {
  return template.replace(/%\((\w+)\)s/g, (_, key) => String(values[key]));
}

function enhance(field) {
  const input = field.querySelector("input.govuk-input");
  const chosen = field.querySelector("input[data-person-account]");
  const texts = field.dataset;
  // The hint and the error message stay announced with the box (the library sets its own hint).
  const ownDescriptions = (input.getAttribute("aria-describedby") || "").split(" ").filter(Boolean);
  const container = document.createElement("div");
  container.className = "tb-person-field__autocomplete govuk-!-width-two-thirds";
  input.replaceWith(container);
  let pickedName = chosen.value ? input.value : null;
  let latestQuery = 0;

  autocomplete({
    element: container,
    id: input.id,
    name: input.name,
    defaultValue: input.value,
    minLength: 1,
    showNoOptionsFound: true,
    confirmOnBlur: false,
    displayMenu: "overlay",
    inputClasses: input.classList.contains("govuk-input--error") ? "tb-person-field__input--error" : null,
    source: async (query, populate) => {
      // Answers can come back out of order when someone types fast: only the answer to
      // the latest query is shown, never an older one over it.
      const ticket = ++latestQuery;
      const url = new URL(texts.lookupUrl, window.location.href);
      url.searchParams.set("q", query);
      let people = [];
      try {
        const answer = await fetch(url, { headers: { Accept: "application/json" } });
        people = answer.ok ? await answer.json() : [];
      } catch {
        people = [];
      }
      if (ticket === latestQuery) {
        populate(people);
        // Which text the suggestions showing now answer, set once the list has been drawn
        // (the library draws on a microtask after populate). The browser tests wait for it:
        // a list drawn for an earlier prefix looks the same, and the answer for the full text
        // arriving after a key press would reset the highlighted suggestion.
        setTimeout(() => {
          if (ticket === latestQuery) {
            container.dataset.suggestionsFor = query;
          }
        });
      }
    },
    templates: {
      inputValue: (person) => (person ? person.name : ""),
      suggestion: (person) => (typeof person === "string" ? person : person.name),
    },
    onConfirm: (person) => {
      if (person) {
        chosen.value = String(person.account_id);
        pickedName = person.name;
      }
    },
    tNoResults: () => texts.noResults,
    tStatusQueryTooShort: () => texts.queryTooShort,
    tStatusNoResults: () => texts.noResults,
    tStatusSelectedOption: (name, length, index) =>
      fill(texts.selected, { name, position: index + 1, count: length }),
    tStatusResults: (length) =>
      length === 1 ? texts.resultsOne : fill(texts.resultsMany, { count: length }),
    tAssistiveHint: () => texts.assistiveHint,
  });

  const box = container.querySelector("input");
  box.addEventListener("input", () => {
    if (box.value !== pickedName) {
      chosen.value = "";
    }
  });
  const describe = () => {
    const current = (box.getAttribute("aria-describedby") || "").split(" ").filter(Boolean);
    const wanted = [...new Set([...ownDescriptions, ...current])];
    if (wanted.length && wanted.join(" ") !== current.join(" ")) {
      box.setAttribute("aria-describedby", wanted.join(" "));
    }
  };
  describe();
  new MutationObserver(describe).observe(box, { attributes: true, attributeFilter: ["aria-describedby"] });
}

if (autocomplete) {
  document.querySelectorAll("[data-person-field]").forEach(enhance);
}
