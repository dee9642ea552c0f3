{{/* Names and labels. */}}
{{- define "hearth.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "hearth.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "hearth.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "hearth.instanceLabels" -}}
app.kubernetes.io/name: {{ include "hearth.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "hearth.commonLabels" -}}
helm.sh/chart: {{ include "hearth.chart" . }}
{{ include "hearth.instanceLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "hearth.labels" -}}
{{ include "hearth.commonLabels" . }}
app.kubernetes.io/component: server
{{- end }}

{{/* A role's pods (and only they: not the hook Job's, not the test's), name and labels:
`dict "root" $ "role" "server"` (the nodes) or "search" (the search role's nodes,
`search.role`). */}}
{{- define "hearth.roleSelectorLabels" -}}
{{ include "hearth.instanceLabels" .root }}
app.kubernetes.io/component: {{ .role }}
{{- end }}

{{- define "hearth.roleLabels" -}}
{{ include "hearth.commonLabels" .root }}
app.kubernetes.io/component: {{ .role }}
{{- end }}

{{- define "hearth.roleName" -}}
{{- if eq .role "server" }}
{{- include "hearth.fullname" .root }}
{{- else }}
{{- printf "%s-%s" (include "hearth.fullname" .root | trunc 56 | trimSuffix "-") .role }}
{{- end }}
{{- end }}

{{/* How many pods a role runs (`dict "root" $ "role" …`). */}}
{{- define "hearth.roleReplicas" -}}
{{- if eq .role "search" }}{{ .root.Values.search.replicaCount }}{{ else }}{{ .root.Values.replicaCount }}{{ end }}
{{- end }}

{{/* The roles that run: the nodes, and the search role's nodes when it is on. */}}
{{- define "hearth.roles" -}}
{{- if .Values.search.role }}server search{{ else }}server{{ end }}
{{- end }}

{{- define "hearth.secretName" -}}
{{- default (include "hearth.fullname" .) .Values.existingSecret }}
{{- end }}

{{/* The log stream's name, as the nodes derive it from the subject root. */}}
{{- define "hearth.logStream" -}}
{{- $root := default "hearth" .Values.config.HEARTH_NATS_SUBJECT_ROOT }}
{{- printf "%s_LOG" (regexReplaceAll "[^A-Za-z0-9]" $root "_" | upper) }}
{{- end }}
