// Starts govuk-frontend's components. A file, not an inline script: the pages'
// Content-Security-Policy allows scripts from this site only.
import { initAll } from "/static/vendor/govuk-frontend-6.3.0/govuk-frontend.min.js";

document.body.classList.add("js-enabled", "govuk-frontend-supported");
initAll();
