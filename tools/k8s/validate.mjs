#!/usr/bin/env node
// Validates Kubernetes manifests offline against the JSON schemas bundled in
// kubernetes-models (and @kubernetes-models/prometheus-operator for
// ServiceMonitor and PrometheusRule, @kubernetes-models/cert-manager for
// Issuer and Certificate, @kubernetes-models/keda for ScaledObject), with AJV. No cluster needed.
//
//   helm template deploy/helm/a2a-mesh | node tools/k8s/validate.mjs -
//   node tools/k8s/validate.mjs a.yaml b.yaml
//
// Reads multi-document YAML. Prints one line per document; exits 1 if any is
// invalid, is not YAML, or has a kind with no schema (an unknown or removed API).
// It does not flag unknown fields: pair it with `helm lint --strict`.
import { readFileSync } from "node:fs";
import { parseAllDocuments } from "yaml";

const PACKAGES = [
  "kubernetes-models",
  "@kubernetes-models/prometheus-operator",
  "@kubernetes-models/cert-manager",
  "@kubernetes-models/keda",
];
const files = process.argv.slice(2);
if (!files.length) files.push("-");
let bad = 0;
let ok = 0;
for (const file of files) {
  const text = readFileSync(file === "-" ? 0 : file, "utf8");
  for (const doc of parseAllDocuments(text)) {
    if (doc.errors.length) {
      console.log(`${file}: YAML error: ${doc.errors[0].message}`);
      bad++;
      continue;
    }
    const obj = doc.toJS();
    if (obj == null) continue;  // an empty document
    const { apiVersion, kind } = obj;
    const name = `${kind}/${obj.metadata?.name ?? "?"}`;
    if (!apiVersion || !kind) {
      console.log(`${file}: ${name}: no apiVersion or kind`);
      bad++;
      continue;
    }
    let model;
    for (const pkg of PACKAGES) {
      try {
        model = await import(`${pkg}/${apiVersion}/${kind}`);
        break;
      } catch {
        // not in this package; try the next
      }
    }
    if (!model) {
      console.log(`${file}: ${name}: no schema for ${apiVersion} ${kind}`);
      bad++;
      continue;
    }
    try {
      new model[kind](obj).validate();
      ok++;
      console.log(`${file}: ${name} (${apiVersion}): valid`);
    } catch (e) {
      bad++;
      console.log(`${file}: ${name} (${apiVersion}): INVALID\n  ${String(e.message).split("\n").join("\n  ")}`);
    }
  }
}
console.log(`${ok} valid, ${bad} invalid`);
process.exit(bad ? 1 : 0);
