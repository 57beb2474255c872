/**
 * Git facts for run records: the commit, whether the tree is dirty, and
 * revision resolution for comparisons.
 * @module
 */

async function git(args: string[], cwd?: string): Promise<string | null> {
  try {
    const out = await new Deno.Command("git", { args, cwd, stdout: "piped", stderr: "null" })
      .output();
    return out.success ? new TextDecoder().decode(out.stdout).trim() : null;
  } catch {
    return null;
  }
}

/**
 * The current commit (full hash) and whether tracked files differ from it.
 *
 * @example
 * ```ts ignore
 * const { commit, dirty } = await gitState();
 * ```
 */
export async function gitState(cwd?: string): Promise<{ commit: string; dirty: boolean }> {
  const commit = (await git(["rev-parse", "HEAD"], cwd)) ?? "unknown";
  const status = await git(["status", "--porcelain", "--untracked-files=no"], cwd);
  return { commit, dirty: status === null ? false : status.length > 0 };
}

/**
 * Resolves a revision to a full commit hash (null if unknown).
 *
 * @example
 * ```ts ignore
 * const h = await resolveRev("HEAD~1");
 * ```
 */
export function resolveRev(rev: string, cwd?: string): Promise<string | null> {
  return git(["rev-parse", "--verify", "--quiet", `${rev}^{commit}`], cwd);
}

/**
 * Commits in history order (newest first), for ordering runs by commit.
 *
 * @example
 * ```ts ignore
 * const order = await commitOrder();
 * ```
 */
export async function commitOrder(cwd?: string): Promise<string[]> {
  return ((await git(["log", "--format=%H"], cwd)) ?? "").split("\n").filter(Boolean);
}
