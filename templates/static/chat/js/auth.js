// The /auth page: log in, sign up, verify the email. One section per step, chosen by the URL
// fragment (#login, #signup, #verify). Every request goes to the ExpressChat auth endpoints,
// which set httpOnly cookies; on success the browser goes to the chat at "/".

import { $, setAlert } from "./dom.js";
import { getJSON, postJSON } from "./http.js";
import { FLASH_KEY } from "./keys.js";

const STEPS = ["login", "signup", "verify"];
const EMAIL_KEY = "chat.pendingEmail"; // sessionStorage: the address being verified
let keepNotice = false; // a programmatic step change keeps the notice it just set

function currentStep() {
  const step = location.hash.replace("#", "");
  return STEPS.includes(step) ? step : "login";
}

function showStep(step, { focus = false } = {}) {
  for (const section of document.querySelectorAll("[data-step]")) section.hidden = section.dataset.step !== step;
  for (const link of document.querySelectorAll("[data-step-link]")) {
    if (link.dataset.stepLink === step) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  document.title = { login: "Log in", signup: "Sign up", verify: "Verify email" }[step] + " · Chat";
  if (step === "verify") {
    const email = sessionStorage.getItem(EMAIL_KEY);
    if (email && !$("#verify-email").value) $("#verify-email").value = email;
  }
  if (focus) {
    const first = $(`#step-${step} input:not([type=hidden])`);
    if (first) (step === "verify" && first.value ? $("#verify-code") : first).focus();
  }
}

function goTo(step) {
  if (currentStep() === step) {
    showStep(step, { focus: true });
  } else {
    keepNotice = true;
    location.hash = step; // hashchange shows it
  }
}

function notice(message) {
  setAlert($("#auth-notice"), message);
}

function waitText(retryAfter) {
  return retryAfter ? `Too many attempts. Try again in ${retryAfter} seconds.` : "Too many attempts. Try again in a minute.";
}

/** Mark fields invalid (aria-invalid) and focus the first; returns true when all are fine. */
function check(form, problems, errorEl) {
  for (const input of form.querySelectorAll("input")) input.removeAttribute("aria-invalid");
  if (!problems.length) {
    setAlert(errorEl, "");
    return true;
  }
  for (const [input] of problems) input.setAttribute("aria-invalid", "true");
  setAlert(errorEl, problems.map(([, text]) => text).join(" "));
  problems[0][0].focus();
  return false;
}

function busy(form, on) {
  for (const el of form.querySelectorAll("button, input")) el.disabled = on;
  form.setAttribute("aria-busy", on ? "true" : "false");
}

const EMAIL_RE = /^[^\s@]+@[^\s@]+$/;

async function onLogin(event) {
  event.preventDefault();
  const form = event.currentTarget;
  const email = $("#login-email").value.trim();
  const password = $("#login-password").value;
  const error = $("#login-error");
  const problems = [];
  if (!EMAIL_RE.test(email)) problems.push([$("#login-email"), "Enter your email address."]);
  if (!password) problems.push([$("#login-password"), "Enter your password."]);
  if (!check(form, problems, error)) return;
  busy(form, true);
  const { status, data, retryAfter } = await postJSON("/login", { email, password });
  busy(form, false);
  if (status === 200 && data.success === 1) {
    sessionStorage.removeItem(EMAIL_KEY);
    location.assign("/");
    return;
  }
  if (data.success === -2) {
    sessionStorage.setItem(EMAIL_KEY, email);
    $("#verify-email").value = email;
    notice("Your email is not verified yet. Enter the code from the mail, or send a new one.");
    goTo("verify");
    return;
  }
  let text = "Incorrect email or password.";
  if (status === 403) text = "This account is suspended.";
  else if (status === 429) text = waitText(retryAfter);
  else if (status === 0) text = "Cannot reach the server. Check your connection and try again.";
  else if (status >= 500) text = "Something went wrong on the server. Try again.";
  setAlert(error, text);
  $("#login-password").focus();
}

async function onSignup(event) {
  event.preventDefault();
  const form = event.currentTarget;
  const name = $("#signup-name").value.trim();
  const email = $("#signup-email").value.trim();
  const password = $("#signup-password").value;
  const error = $("#signup-error");
  const problems = [];
  if (!name) problems.push([$("#signup-name"), "Enter a display name."]);
  if (!EMAIL_RE.test(email)) problems.push([$("#signup-email"), "Enter a valid email address."]);
  if (password.length < 8) problems.push([$("#signup-password"), "The password needs at least 8 characters."]);
  if (!check(form, problems, error)) return;
  busy(form, true);
  const { status, data, retryAfter } = await postJSON("/signup", { name, email, password });
  busy(form, false);
  if (status === 200 && data.success === 1) {
    sessionStorage.setItem(EMAIL_KEY, email);
    $("#verify-email").value = email;
    $("#verify-code").value = "";
    notice(`We sent a 6-digit code to ${email}.`);
    goTo("verify");
    return;
  }
  let text;
  if (data.success === 0) text = "An account with this email already exists. Log in instead.";
  else if (status === 403) text = "This account is suspended.";
  else if (status === 429) text = data.message && data.message !== "Too Many Requests" ? data.message : waitText(retryAfter);
  else if (status === 0) text = "Cannot reach the server. Check your connection and try again.";
  else if (data.message === "Email Don't Exist, Enter a Valid Email") text = "Enter a valid email address.";
  else if (data.message === "Enter All credentials properly") text = "Fill in every field.";
  else text = typeof data.message === "string" && status < 500 ? data.message : "Something went wrong. Try again.";
  setAlert(error, text);
}

async function onVerify(event) {
  event.preventDefault();
  const form = event.currentTarget;
  const email = $("#verify-email").value.trim();
  const code = $("#verify-code").value.replace(/\s+/g, "");
  const error = $("#verify-error");
  const problems = [];
  if (!EMAIL_RE.test(email)) problems.push([$("#verify-email"), "Enter the email you signed up with."]);
  if (!/^[0-9]{6}$/.test(code)) problems.push([$("#verify-code"), "The code is the 6 digits from the mail."]);
  if (!check(form, problems, error)) return;
  busy(form, true);
  // The documented cookie-setting verification endpoint is GET /verify (the mailed link); with
  // source=app it answers JSON instead of a page. The code is single-use and only in this
  // background request, never in the page's address.
  const query = new URLSearchParams({ email, token: code, source: "app" });
  const { status, data, retryAfter } = await getJSON(`/verify?${query}`);
  busy(form, false);
  if (status === 200 && data.success === 1) {
    sessionStorage.removeItem(EMAIL_KEY);
    location.assign("/");
    return;
  }
  let text = "That code is wrong or has expired. Check it, or send a new one.";
  if (status === 403) text = "This account is suspended.";
  else if (status === 429) text = waitText(retryAfter);
  else if (status === 0) text = "Cannot reach the server. Check your connection and try again.";
  setAlert(error, text);
  $("#verify-code").focus();
}

async function onResend() {
  const email = $("#verify-email").value.trim();
  const error = $("#verify-error");
  if (!EMAIL_RE.test(email)) {
    check($("#verify-form"), [[$("#verify-email"), "Enter the email you signed up with."]], error);
    return;
  }
  const button = $("#resend-btn");
  button.disabled = true;
  const { status, data, retryAfter } = await postJSON("/resend", { email });
  button.disabled = false;
  if (status === 200) {
    setAlert(error, "");
    sessionStorage.setItem(EMAIL_KEY, email);
    notice(`A new code is on its way to ${email}. The old one no longer works.`);
    return;
  }
  let text = "Could not send a new code. Try again.";
  if (data.success === 0) text = "This email is already verified. Log in instead.";
  else if (status === 404) text = "No account uses this email. Sign up first.";
  else if (status === 429) text = data.message && data.message !== "Too Many Requests" ? `${data.message}` : waitText(retryAfter);
  else if (status === 403) text = "This account is suspended.";
  setAlert(error, text);
}

function init() {
  const flash = sessionStorage.getItem(FLASH_KEY);
  if (flash) {
    sessionStorage.removeItem(FLASH_KEY);
    notice(flash);
  }
  $("#login-form").addEventListener("submit", onLogin);
  $("#signup-form").addEventListener("submit", onSignup);
  $("#verify-form").addEventListener("submit", onVerify);
  $("#resend-btn").addEventListener("click", onResend);
  window.addEventListener("hashchange", () => {
    if (!keepNotice) notice("");
    keepNotice = false;
    showStep(currentStep(), { focus: true });
  });
  showStep(currentStep(), { focus: true });
}

init();
