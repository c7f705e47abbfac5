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
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/* Seconds Kubernetes waits after SIGTERM: the preStop wait, the drain, and a margin. */}}
{{- define "a2a-mesh.gracePeriod" -}}
{{- add .Values.preStopSleepSeconds .Values.node.drainTimeoutSeconds 15 }}
{{- end }}
