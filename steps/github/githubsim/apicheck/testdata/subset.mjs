// subset.mjs writes the part of GitHub's OpenAPI description that runbook uses: the
// operations below, with every component they reference, transitively.
//
//	node subset.mjs SOURCE.json PACKAGE_VERSION > api.github.com.subset.json
//
// OPERATIONS is the union of what the GitHub steps call (go-github calls in steps/github)
// and what githubsim answers (its routes); keep it in step with both.
import { readFileSync } from "node:fs";

const OPERATIONS = [
  "GET /installation/repositories",
  "GET /rate_limit",
  "GET /repos/{owner}/{repo}",
  "GET /repos/{owner}/{repo}/branches/{branch}",
  "GET /repos/{owner}/{repo}/commits/{ref}",
  "GET /repos/{owner}/{repo}/contents/{path}",
  "PUT /repos/{owner}/{repo}/contents/{path}",
  "GET /repos/{owner}/{repo}/git/ref/{ref}",
  "POST /repos/{owner}/{repo}/git/refs",
  "PATCH /repos/{owner}/{repo}/git/refs/{ref}",
  "POST /repos/{owner}/{repo}/git/tags",
  "GET /repos/{owner}/{repo}/git/tags/{tag_sha}",
  "GET /repos/{owner}/{repo}/issues",
  "POST /repos/{owner}/{repo}/issues",
  "GET /repos/{owner}/{repo}/issues/comments/{comment_id}",
  "PATCH /repos/{owner}/{repo}/issues/comments/{comment_id}",
  "GET /repos/{owner}/{repo}/issues/{issue_number}",
  "PATCH /repos/{owner}/{repo}/issues/{issue_number}",
  "GET /repos/{owner}/{repo}/issues/{issue_number}/comments",
  "POST /repos/{owner}/{repo}/issues/{issue_number}/comments",
  "GET /repos/{owner}/{repo}/milestones",
  "POST /repos/{owner}/{repo}/milestones",
  "GET /repos/{owner}/{repo}/milestones/{milestone_number}",
  "PATCH /repos/{owner}/{repo}/milestones/{milestone_number}",
  "GET /repos/{owner}/{repo}/releases",
  "POST /repos/{owner}/{repo}/releases",
  "GET /repos/{owner}/{repo}/releases/tags/{tag}",
  "GET /repos/{owner}/{repo}/releases/{release_id}",
  "PATCH /repos/{owner}/{repo}/releases/{release_id}",
  "GET /user",
];

const [source, version] = process.argv.slice(2);
if (!source || !version) {
  console.error("usage: node subset.mjs SOURCE.json PACKAGE_VERSION");
  process.exit(2);
}
const spec = JSON.parse(readFileSync(source, "utf8"));

const paths = {};
for (const op of [...OPERATIONS].sort()) {
  const [method, path] = op.split(" ");
  const item = spec.paths[path];
  const operation = item && item[method.toLowerCase()];
  if (!operation) {
    console.error(`subset.mjs: ${op} is not in ${source}`);
    process.exit(1);
  }
  paths[path] ??= item.parameters ? { parameters: item.parameters } : {};
  paths[path][method.toLowerCase()] = operation;
}

// Follow every "#/components/KIND/NAME" reference until no new one appears.
const wanted = new Map(); // "KIND/NAME" -> true
const visit = (v) => {
  if (Array.isArray(v)) return v.forEach(visit);
  if (v === null || typeof v !== "object") return;
  for (const [k, x] of Object.entries(v)) {
    if (k === "$ref" && typeof x === "string") {
      const m = x.match(/^#\/components\/([^/]+)\/([^/]+)$/);
      if (!m) throw new Error(`subset.mjs: unexpected reference ${x}`);
      const key = `${m[1]}/${m[2]}`;
      if (!wanted.has(key)) {
        wanted.set(key, true);
        visit(spec.components[m[1]][m[2]]);
      }
    } else {
      visit(x);
    }
  }
};
visit(paths);

const components = {};
for (const key of [...wanted.keys()].sort()) {
  const [kind, name] = key.split("/");
  (components[kind] ??= {})[name] = spec.components[kind][name];
}

const out = {
  openapi: spec.openapi,
  info: {
    ...spec.info,
    "x-runbook-source": `npm @octokit/openapi@${version}, generated/api.github.com.json`,
    "x-runbook-subset": "the operations runbook's GitHub steps call and githubsim answers; written by testdata/extract.sh",
  },
  servers: spec.servers,
  paths,
  components,
};
process.stdout.write(JSON.stringify(out, null, 2) + "\n");
