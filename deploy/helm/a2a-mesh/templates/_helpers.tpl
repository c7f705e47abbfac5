{{/* The chart's name. */}}
{{- define "a2a-mesh.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The release's full name; node ids are <fullname>-<ordinal>, so it leaves room. */}}
{{- define "a2a-mesh.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 50 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 50 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 50 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "a2a-mesh.headless" -}}
{{- printf "%s-headless" (include "a2a-mesh.fullname" .) }}
{{- end }}

{{/* The DNS name whose records are the mesh's members. */}}
{{- define "a2a-mesh.discoveryName" -}}
{{- printf "%s.%s.svc.%s" (include "a2a-mesh.headless" .) .Release.Namespace .Values.clusterDomain }}
{{- end }}

{{- define "a2a-mesh.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "a2a-mesh.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "a2a-mesh.selectorLabels" -}}
app.kubernetes.io/name: {{ include "a2a-mesh.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "a2a-mesh.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/* The pods' ServiceAccount. */}}
{{- define "a2a-mesh.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "a2a-mesh.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* Whether the prometheus-operator CRDs are there (or a resource is forced). */}}
{{- define "a2a-mesh.monitoringApi" -}}
{{- if .Capabilities.APIVersions.Has "monitoring.coreos.com/v1" }}true{{ end }}
{{- end }}

{{/* Seconds Kubernetes waits after SIGTERM: the preStop wait, the drain, and a margin. */}}
{{- define "a2a-mesh.gracePeriod" -}}
{{- add .Values.preStopSleepSeconds .Values.node.drainTimeoutSeconds 15 }}
{{- end }}

{{/* Where the mesh CA comes from: certManager, generate or secret. */}}
{{- define "a2a-mesh.caSource" -}}
{{- if ne .Values.tls.ca "auto" }}
{{- .Values.tls.ca }}
{{- else if .Capabilities.APIVersions.Has "cert-manager.io/v1/Certificate" }}
{{- "certManager" }}
{{- else }}
{{- "generate" }}
{{- end }}
{{- end }}

{{/* The Secret that holds the mesh CA (tls.crt, tls.key, ca.crt). */}}
{{- define "a2a-mesh.caSecret" -}}
{{- if eq (include "a2a-mesh.caSource" .) "secret" }}
{{- required "tls.existingSecret is required with tls.ca=secret" .Values.tls.existingSecret }}
{{- else }}
{{- printf "%s-ca" (include "a2a-mesh.fullname" .) }}
{{- end }}
{{- end }}

{{/* The Secret with the token file ("tokens") and the admin token ("admin-token"). */}}
{{- define "a2a-mesh.authSecret" -}}
{{- default (printf "%s-auth" (include "a2a-mesh.fullname" .)) .Values.auth.existingSecret }}
{{- end }}

{{/* The DNS names in every node's certificate besides its own pod's (comma-separated). */}}
{{- define "a2a-mesh.certDnsNames" -}}
{{- $fullname := include "a2a-mesh.fullname" . }}
{{- $ns := .Release.Namespace }}
{{- $names := list $fullname (printf "%s.%s" $fullname $ns) (printf "%s.%s.svc" $fullname $ns) (printf "%s.%s.svc.%s" $fullname $ns .Values.clusterDomain) (include "a2a-mesh.discoveryName" .) }}
{{- with .Values.node.publicHttpUrl }}
{{- $names = append $names (regexReplaceAll ":[0-9]+$" (urlParse .).host "") }}
{{- end }}
{{- with .Values.node.publicGrpcUrl }}
{{- $names = append $names (regexReplaceAll ":[0-9]+$" (regexReplaceAll "^[a-z]+://" . "") "") }}
{{- end }}
{{- concat $names .Values.tls.dnsNames | uniq | join "," }}
{{- end }}

{{/* meshctl's flags to reach this pod's node from inside it. */}}
{{- define "a2a-mesh.localMeshctl" -}}
meshctl --server {{ if .Values.tls.enabled }}localhost{{ else }}127.0.0.1{{ end }}:{{ .Values.node.grpcPort }}
{{- if .Values.tls.enabled }} --tls-ca /etc/a2a-mesh/tls/ca.crt --tls-cert /etc/a2a-mesh/tls/node.crt --tls-key /etc/a2a-mesh/tls/node.key
{{- else if .Values.auth.enabled }} --token-file /etc/a2a-mesh/admin/admin-token
{{- end }}
{{- end }}

{{/* Whether the nodes load a policy (docs/governance.md). */}}
{{- define "a2a-mesh.governed" -}}
{{- if or .Values.governance.existingConfigMap .Values.governance.policy }}true{{ end }}
{{- end }}

{{/* The ConfigMap holding policy.json. */}}
{{- define "a2a-mesh.policyConfigMap" -}}
{{- default (printf "%s-policy" (include "a2a-mesh.fullname" .)) .Values.governance.existingConfigMap }}
{{- end }}

{{/* The policy the chart renders: rules for the chart's own credentials
(its admin and agent tokens, the nodes' certificates for the preStop drain)
first, then the values' policy. */}}
{{- define "a2a-mesh.policy" -}}
{{- $policy := deepCopy .Values.governance.policy }}
{{- $rules := list }}
{{- if and .Values.auth.enabled (not .Values.auth.existingSecret) }}
{{- $rules = append $rules (dict "name" "chart-admin" "effect" "allow" "subjects" (list "principal:admin") "actions" (list "*")) }}
{{- $rules = append $rules (dict "name" "chart-agents" "effect" "allow" "subjects" (list "principal:agents") "actions" (list "register-agent")) }}
{{- end }}
{{- if .Values.tls.enabled }}
{{- $rules = append $rules (dict "name" "chart-nodes" "effect" "allow" "subjects" (list (printf "principal:spiffe://%s/node/*" .Values.tls.trustDomain)) "actions" (list "drain" "inspect")) }}
{{- end }}
{{- $_ := set $policy "rules" (concat $rules (default (list) $policy.rules)) }}
{{- toPrettyJson $policy }}
{{- end }}
