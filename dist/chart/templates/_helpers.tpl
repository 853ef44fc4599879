{{/* The prefix of every object's name: the release name, as config/default's namePrefix. */}}
{{- define "loan-operator.prefix" -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- end -}}

{{/* Labels of every object. */}}
{{- define "loan-operator.labels" -}}
app.kubernetes.io/name: loan-operator
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "loan-operator.controllerSelector" -}}
app.kubernetes.io/name: loan-operator
app.kubernetes.io/instance: {{ .Release.Name }}
control-plane: controller-manager
{{- end -}}

{{- define "loan-operator.gatewaySelector" -}}
app.kubernetes.io/name: loan-operator
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: gateway
{{- end -}}

{{- define "loan-operator.bankSimSelector" -}}
app.kubernetes.io/name: loan-operator
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: bank-sim
{{- end -}}

{{- define "loan-operator.controllerServiceAccount" -}}
{{- .Values.controller.serviceAccount.name | default (printf "%s-controller-manager" (include "loan-operator.prefix" .)) -}}
{{- end -}}

{{- define "loan-operator.gatewayServiceAccount" -}}
{{- .Values.gateway.serviceAccount.name | default (printf "%s-gateway" (include "loan-operator.prefix" .)) -}}
{{- end -}}

{{/* image renders repository:tag, the tag defaulting to the chart's appVersion. */}}
{{- define "loan-operator.image" -}}
{{- printf "%s:%s" .image.repository (.image.tag | default .appVersion) -}}
{{- end -}}

{{/* The bank the controller uses: bank.url, else the simulator's Service. */}}
{{- define "loan-operator.bankURL" -}}
{{- if .Values.bank.url -}}
{{- .Values.bank.url -}}
{{- else if .Values.bankSim.enabled -}}
{{- printf "http://%s-bank-sim:8000" (include "loan-operator.prefix" .) -}}
{{- else -}}
{{- fail "set bank.url to the bank's base URL, or bankSim.enabled=true to deploy the simulator" -}}
{{- end -}}
{{- end -}}

{{/* The hardening every container shares: non-root, read-only, no privileges. */}}
{{- define "loan-operator.containerSecurityContext" -}}
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
readOnlyRootFilesystem: true
allowPrivilegeEscalation: false
capabilities:
  drop:
  - ALL
{{- end -}}

{{- define "loan-operator.podSecurityContext" -}}
runAsNonRoot: true
seccompProfile:
  type: RuntimeDefault
{{- end -}}
