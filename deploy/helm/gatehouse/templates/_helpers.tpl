{{/* The chart name, truncated for label values. */}}
{{- define "gatehouse.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The resource name prefix: release-chart, or the release alone when it already names the chart. */}}
{{- define "gatehouse.fullname" -}}
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

{{- define "gatehouse.selectorLabels" -}}
app.kubernetes.io/name: {{ include "gatehouse.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "gatehouse.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "gatehouse.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "gatehouse.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "gatehouse.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "gatehouse.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/* The session store, with the gateway's default. */}}
{{- define "gatehouse.store" -}}
{{- $s := dig "session" "store" "" (.Values.config | default dict) }}
{{- default "bolt" $s }}
{{- end }}

{{/* The BFF prefix, with the gateway's default, as "/bff". */}}
{{- define "gatehouse.bffPrefix" -}}
{{- $p := dig "bff" "prefix" "" (.Values.config | default dict) }}
{{- printf "/%s" (trimAll "/" (default "/bff" $p)) }}
{{- end }}

{{- define "gatehouse.healthPath" -}}
{{- default (printf "%s/healthz" (include "gatehouse.bffPrefix" .)) (dig "server" "health_path" "" (.Values.config | default dict)) }}
{{- end }}

{{- define "gatehouse.readyPath" -}}
{{- default (printf "%s/readyz" (include "gatehouse.bffPrefix" .)) (dig "server" "ready_path" "" (.Values.config | default dict)) }}
{{- end }}

{{/* HTTPS when the main listener serves TLS itself. */}}
{{- define "gatehouse.scheme" -}}
{{- if dig "server" "tls_cert" "" (.Values.config | default dict) }}HTTPS{{ else }}HTTP{{ end }}
{{- end }}

{{/* Where each Secret is mounted: a directory per Secret, so updates reach the file. */}}
{{- define "gatehouse.secretDir" -}}
/etc/gatehouse/secrets/{{ . }}
{{- end }}

{{/*
The checks that stop a render: more than one pod on a per-process store,
and secrets or chart-managed keys set in config.
*/}}
{{- define "gatehouse.validate" -}}
{{- $store := include "gatehouse.store" . }}
{{- $shared := has $store (list "redis" "postgres") }}
{{- if and (gt (int .Values.replicaCount) 1) (not $shared) }}
{{- fail (printf "replicaCount %d needs a store shared by all pods: set config.session.store to redis or postgres (it is %q, whose sessions live in one pod)" (int .Values.replicaCount) $store) }}
{{- end }}
{{- if and .Values.autoscaling.enabled (not $shared) }}
{{- fail (printf "autoscaling.enabled needs a store shared by all pods: set config.session.store to redis or postgres (it is %q, whose sessions live in one pod)" $store) }}
{{- end }}
{{- if and (eq $store "bolt") .Values.persistence.enabled (not .Values.persistence.existingClaim) (has "ReadWriteMany" .Values.persistence.accessModes) }}
{{- fail "persistence: the bolt store is one file opened by one process; use ReadWriteOnce" }}
{{- end }}
{{- $cfg := .Values.config | default dict }}
{{- range $k := list "client_secret" "client_secret_file" }}
{{- if hasKey (dig "oidc" dict $cfg) $k }}{{ fail (printf "config.oidc.%s: the client secret comes from secrets.clientSecret, never from values" $k) }}{{ end }}
{{- end }}
{{- range $k := list "keys" "keys_file" "bolt_path" }}
{{- if hasKey (dig "session" dict $cfg) $k }}{{ fail (printf "config.session.%s is set by the chart (keys come from secrets.sessionKeys, the bolt file lives on the state volume)" $k) }}{{ end }}
{{- end }}
{{- range $k := list "token" "token_file" "listen" }}
{{- if hasKey (dig "admin" dict $cfg) $k }}{{ fail (printf "config.admin.%s is set by the chart (the token comes from secrets.adminToken, the port from ports.admin)" $k) }}{{ end }}
{{- end }}
{{- range $k := list "password" "password_file" }}
{{- if hasKey (dig "redis" dict $cfg) $k }}{{ fail (printf "config.redis.%s: the Redis password comes from secrets.redisPassword, never from values" $k) }}{{ end }}
{{- end }}
{{- if hasKey (dig "server" dict $cfg) "listen" }}{{ fail "config.server.listen is set by the chart from ports.http" }}{{ end }}
{{- if and (has $store (list "bolt" "redis" "postgres")) (not .Values.secrets.sessionKeys.name) }}
{{- fail (printf "secrets.sessionKeys.name is required with store %s: tokens are sealed at rest" $store) }}
{{- end }}
{{- end }}

{{/* gatehouse.yaml: the user's config with the keys the chart manages. */}}
{{- define "gatehouse.config" -}}
{{- $cfg := deepCopy (.Values.config | default dict) }}
{{- $managed := dict "server" (dict "listen" (printf "0.0.0.0:%d" (int .Values.ports.http))) }}
{{- if .Values.secrets.adminToken.name }}
{{- $_ := set $managed "admin" (dict "listen" (printf "0.0.0.0:%d" (int .Values.ports.admin)) "token_file" (printf "%s/%s" (include "gatehouse.secretDir" "admin-token") .Values.secrets.adminToken.key)) }}
{{- else }}
{{- $_ := set $managed "admin" (dict "listen" (printf "127.0.0.1:%d" (int .Values.ports.admin))) }}
{{- end }}
{{- $oidc := dict }}
{{- if .Values.secrets.clientSecret.name }}
{{- $_ := set $oidc "client_secret_file" (printf "%s/%s" (include "gatehouse.secretDir" "client-secret") .Values.secrets.clientSecret.key) }}
{{- end }}
{{- $_ := set $managed "oidc" $oidc }}
{{- $session := dict }}
{{- if .Values.secrets.sessionKeys.name }}
{{- $_ := set $session "keys_file" (printf "%s/%s" (include "gatehouse.secretDir" "session-keys") .Values.secrets.sessionKeys.key) }}
{{- end }}
{{- if eq (include "gatehouse.store" .) "bolt" }}
{{- $_ := set $session "bolt_path" "/var/lib/gatehouse/gatehouse.db" }}
{{- end }}
{{- $_ := set $managed "session" $session }}
{{- if .Values.secrets.redisPassword.name }}
{{- $_ := set $managed "redis" (dict "password_file" (printf "%s/%s" (include "gatehouse.secretDir" "redis-password") .Values.secrets.redisPassword.key)) }}
{{- end }}
{{- toYaml (mergeOverwrite $cfg $managed) }}
{{- end }}
