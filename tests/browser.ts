/**
 * A real browser for tests: Debian's headless Chromium opens a page (file://
 * included), lets its scripts run, and returns the DOM after them, every
 * console message and a screenshot.
 * @module
 */

/** Chromium's path, or null (the tests that need it say why they skip). */
export async function chromium(): Promise<string | null> {
  for (const p of ["/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"]) {
    try {
      if ((await Deno.stat(p)).isFile) return p;
    } catch { /* next */ }
  }
  return null;
}

/** What a page gave: its DOM after the scripts ran, and its console messages. */
export interface PageResult {
  dom: string;
  console: string[];
}

/**
 * Opens `url` in headless Chromium (a fresh profile in `profileDir`), runs its
 * scripts for up to 10 s of virtual time, writes a `width` x `height`
 * screenshot to `shot` and returns the DOM and the console messages.
 */
export async function openPage(
  browser: string,
  url: string,
  shot: string,
  profileDir: string,
  width = 1300,
  height = 1400,
): Promise<PageResult> {
  const out = await new Deno.Command(browser, {
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-dev-shm-usage",
      "--hide-scrollbars",
      "--no-first-run",
      `--user-data-dir=${profileDir}`,
      "--virtual-time-budget=10000",
      `--window-size=${width},${height}`,
      "--enable-logging=stderr",
      "--v=0",
      `--screenshot=${shot}`,
      "--dump-dom",
      url,
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stderr = new TextDecoder().decode(out.stderr);
  if (out.code !== 0) throw new Error(`chromium exited ${out.code}: ${stderr.slice(-500)}`);
  // console messages: `[...:INFO:CONSOLE(12)] "text", source: file:///... (12)`
  const console = stderr.split("\n").filter((l) => /:CONSOLE[:(]/.test(l))
    .map((l) => l.replace(/^.*?:CONSOLE[^\]]*\] /, ""));
  return { dom: new TextDecoder().decode(out.stdout), console };
}
