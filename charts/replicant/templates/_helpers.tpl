{{/*
replicant.name: the chart name, DNS-label safe.
*/}}
{{- define "replicant.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
replicant.fullname: prefix of every object name: "<release>-replicant", or the release
name alone when it already contains "replicant".
*/}}
{{- define "replicant.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/*
replicant.suffixedName: "<fullname>-<suffix>" kept within 63 characters.
Call with (list $ "suffix").
*/}}
{{- define "replicant.suffixedName" -}}
{{- $root := index . 0 -}}
{{- $suffix := index . 1 -}}
{{- $max := int (sub 62 (len $suffix)) -}}
{{- printf "%s-%s" (include "replicant.fullname" $root | trunc $max | trimSuffix "-") $suffix -}}
{{- end -}}

{{/*
replicant.chart: chart name and version for the helm.sh/chart label.
*/}}
{{- define "replicant.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
replicant.selectorLabels: the immutable labels that select the server pods.
*/}}
{{- define "replicant.selectorLabels" -}}
app.kubernetes.io/name: {{ include "replicant.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: server
{{- end -}}

{{/*
replicant.labels: recommended labels on every object (selector labels plus
version and manager).
*/}}
{{- define "replicant.labels" -}}
helm.sh/chart: {{ include "replicant.chart" . }}
app.kubernetes.io/name: {{ include "replicant.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: replicant
{{- end -}}

{{/*
replicant.clusterRoleName: name of the ClusterRole and ClusterRoleBinding
(cluster-scoped: the release namespace keeps two releases apart).
*/}}
{{- define "replicant.clusterRoleName" -}}
{{- printf "%s-%s" .Release.Namespace (include "replicant.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
replicant.image: "repository@digest" when a digest is set, else "repository:tag"
(tag defaults to the chart's appVersion).
*/}}
{{- define "replicant.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{/*
replicant.tlsSecretName: the Secret mounted at /etc/replicant/tls.
*/}}
{{- define "replicant.tlsSecretName" -}}
{{- default (include "replicant.suffixedName" (list . "tls")) .Values.tls.secretName -}}
{{- end -}}

{{/*
replicant.clientCAName: the Secret (or ConfigMap) holding the client CA bundle.
*/}}
{{- define "replicant.clientCAName" -}}
{{- $ca := .Values.tls.clientCA -}}
{{- default (include "replicant.suffixedName" (list . "client-ca")) (default $ca.secretName $ca.configMapName) -}}
{{- end -}}

{{/*
replicant.testClientSecretName: the Secret whose certificate `helm test` presents:
never the server's (a server certificate is no client).
*/}}
{{- define "replicant.testClientSecretName" -}}
{{- default (include "replicant.suffixedName" (list . "test-client")) .Values.tests.secretName -}}
{{- end -}}

{{/*
replicant.grants: --readers/--writers entries (server/authz.py) from a values
list whose items are an identity or {identity, namespaces}.
*/}}
{{- define "replicant.grants" -}}
{{- $entries := list -}}
{{- range . -}}
{{- if kindIs "string" . -}}
{{- $entries = append $entries . -}}
{{- else -}}
{{- $identity := .identity -}}
{{- range .namespaces -}}
{{- $entries = append $entries (printf "%s=%s" $identity .) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- join "," $entries -}}
{{- end -}}

{{/*
replicant.certificateKeyAndIssuer: the privateKey and issuerRef of every cert-manager
Certificate the chart renders; called with (list . issuerRef): the server's issuer, or
the client issuer for the `helm test` client.
*/}}
{{- define "replicant.certificateKeyAndIssuer" -}}
{{- $issuer := index . 1 -}}
# ECDSA only: with it the server offers no TLS 1.2 suite (TLS 1.3-only handshakes), and
# it refuses to start with another key type. A fresh key on every renewal, which also
# restarts every ListDeployments page token.
privateKey:
  algorithm: ECDSA
  size: 256
  rotationPolicy: Always
issuerRef:
  name: {{ $issuer.name }}
  kind: {{ $issuer.kind }}
  group: {{ $issuer.group }}
{{- end -}}

{{/*
replicant.watchNamespaces: comma-separated namespaces the server watches; empty
when it watches all namespaces (the server's --namespaces contract).
Fails on the contradictory allNamespaces + namespaces combination.
*/}}
{{- define "replicant.watchNamespaces" -}}
{{- if .Values.watch.allNamespaces -}}
{{- if .Values.watch.namespaces -}}
{{- fail "watch.allNamespaces is true and watch.namespaces is set: choose one" -}}
{{- end -}}
{{- else if .Values.watch.namespaces -}}
{{- join "," (uniq .Values.watch.namespaces) -}}
{{- else -}}
{{- .Release.Namespace -}}
{{- end -}}
{{- end -}}

{{/*
replicant.workloadRules: RBAC rules the server needs in every watched namespace:
exactly the verbs the process uses (caches: list/watch; scale: PUT with a
resourceVersion precondition; ReplicaTargets: get/create/merge-patch; status: merge-patch;
Events: create). Nothing else: no secrets, no pods, no delete.
*/}}
{{- define "replicant.workloadRules" -}}
- apiGroups: ["apps"]
  resources: ["deployments"]
  verbs: ["list", "watch"]
- apiGroups: ["apps"]
  resources: ["deployments/scale"]
  verbs: ["update"]
- apiGroups: ["replicant.dev"]
  resources: ["replicatargets"]
  verbs: ["get", "list", "watch", "create", "patch"]
- apiGroups: ["replicant.dev"]
  resources: ["replicatargets/status"]
  verbs: ["patch"]
- apiGroups: ["autoscaling"]
  resources: ["horizontalpodautoscalers"]
  verbs: ["list", "watch"]
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create"]
{{- end -}}

{{/*
replicant.leaseName: the coordination.k8s.io Lease the pods elect a leader with, in the
release namespace (the RBAC rule on Leases names exactly this one): the server's fixed
name (server/app.py LEASE_NAME). TODO: a per-release name once two releases share a namespace.
*/}}
{{- define "replicant.leaseName" -}}
replicant-leader
{{- end -}}

{{/*
replicant.terminationGracePeriodSeconds: the preStop sleep, the server's fixed 20 s drain
(server/app.py SHUTDOWN_GRACE_S), and 10 s to release the Lease and exit.
*/}}
{{- define "replicant.terminationGracePeriodSeconds" -}}
{{- add .Values.server.preStopSleepSeconds 20 10 -}}
{{- end -}}

{{/*
replicant.apiServerEgress: the NetworkPolicy egress rule to the Kubernetes API server:
networkPolicy.egress.apiServer.cidrs on its ports. Never looked up from the cluster (a
`lookup` would make `helm template` differ from `helm upgrade` and go stale when the control
plane moves); fails without CIDRs rather than allow egress to every address.
*/}}
{{- define "replicant.apiServerEgress" -}}
{{- $api := .Values.networkPolicy.egress.apiServer -}}
{{- if not $api.cidrs -}}
{{- fail "networkPolicy.enabled: set networkPolicy.egress.apiServer.cidrs to the Kubernetes API server endpoints (kubectl get endpointslices -n default -l kubernetes.io/service-name=kubernetes; on a managed cluster, its control-plane subnet), or networkPolicy.enabled=false" -}}
{{- end -}}
{{- $ports := list -}}
{{- range $api.ports -}}
{{- $ports = append $ports (dict "port" . "protocol" "TCP") -}}
{{- end -}}
{{- $to := list -}}
{{- range $api.cidrs -}}
{{- $to = append $to (dict "ipBlock" (dict "cidr" .)) -}}
{{- end -}}
{{- toYaml (list (dict "ports" $ports "to" $to)) -}}
{{- end -}}

{{/*
replicant.validate: cross-field checks the JSON schema cannot express.
*/}}
{{- define "replicant.validate" -}}
{{- $cm := .Values.tls.certManager -}}
{{- if and $cm.enabled (not $cm.issuerRef.name) -}}
{{- fail "tls.certManager.enabled is true: set tls.certManager.issuerRef.name" -}}
{{- end -}}
{{- if and $cm.enabled .Values.tests.enabled (not .Values.tests.secretName) -}}
{{- if not $cm.clientIssuerRef.name -}}
{{- fail "tls.certManager.enabled with tests: set tls.certManager.clientIssuerRef.name (the client CA's issuer) or tests.secretName" -}}
{{- end -}}
{{- if eq (toJson $cm.clientIssuerRef) (toJson $cm.issuerRef) -}}
{{- fail "tls.certManager.clientIssuerRef must differ from issuerRef: clients need their own CA" -}}
{{- end -}}
{{- end -}}
{{- if and .Values.tls.clientCA.secretName .Values.tls.clientCA.configMapName -}}
{{- fail "tls.clientCA: set secretName or configMapName, not both" -}}
{{- end -}}
{{- /* A grant on a namespace nobody watches could never be used: say so now. */ -}}
{{- if not .Values.watch.allNamespaces -}}
{{- $watched := splitList "," (include "replicant.watchNamespaces" .) -}}
{{- range $grant := concat .Values.authorization.readers .Values.authorization.writers -}}
{{- if not (kindIs "string" $grant) -}}
{{- range $grant.namespaces -}}
{{- if not (has . $watched) -}}
{{- fail (printf "authorization: %s is granted namespace %s, which is not watched (%s); add it to watch.namespaces" $grant.identity . (join "," $watched)) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/*
replicant.podSecurityContext / replicant.containerSecurityContext: fixed, not values:
together they satisfy the `restricted` Pod Security Standard, as the image's user
65532.
*/}}
{{- define "replicant.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
fsGroup: 65532
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* replicant.containerSecurityContext: see above. */}}
{{- define "replicant.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
capabilities:
  drop:
    - ALL
seccompProfile:
  type: RuntimeDefault
{{- end -}}
