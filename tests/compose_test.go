package tests

// The container deployment (Dockerfile and docker-compose.yml at the
// repository root) cannot be run here, so these tests load the files and
// check how the parts fit: what is built, what runs, which settings must
// agree between services, and that every path the containers rely on is
// provided by a mount whose host side exists in the repository.

import (
	"bufio"
	"encoding/json"
	"net"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"

	"github.com/gatehouse-dev/gatehouse/app"
	"github.com/gatehouse-dev/gatehouse/config"
)

const (
	composeRepoRoot   = ".."
	composeFilePath   = "../docker-compose.yml"
	composeDockerfile = "../Dockerfile"

	composeSetup   = "gatehouse-setup"
	composeWorker  = "gatehouse-worker"
	composeGateway = "gatehouse-gateway"
)

// composeLoad loads docker-compose.yml the way `docker compose` does from the
// repository root, without the caller's environment (interpolation then uses
// the file's defaults).
func composeLoad(t *testing.T) *types.Project {
	t.Helper()
	opts, err := cli.NewProjectOptions([]string{composeFilePath},
		cli.WithWorkingDirectory(composeRepoRoot),
		cli.WithName("gatehouse"),
	)
	if err != nil {
		t.Fatalf("compose options: %v", err)
	}
	p, err := opts.LoadProject(t.Context())
	if err != nil {
		t.Fatalf("load %s: %v", composeFilePath, err)
	}
	return p
}

func composeRepoAbs(t *testing.T) string {
	t.Helper()
	abs, err := filepath.Abs(composeRepoRoot)
	if err != nil {
		t.Fatal(err)
	}
	return abs
}

func composeService(t *testing.T, p *types.Project, name string) types.ServiceConfig {
	t.Helper()
	s, err := p.GetService(name)
	if err != nil {
		t.Fatalf("service %s: %v", name, err)
	}
	return s
}

// composeEnv is the value of an environment variable the service sets.
func composeEnv(t *testing.T, s types.ServiceConfig, key string) string {
	t.Helper()
	v, ok := s.Environment[key]
	if !ok || v == nil {
		t.Fatalf("%s: environment %s: got unset; want set", s.Name, key)
	}
	return *v
}

// composeHostPath maps a path inside the service's containers to the host
// path a bind mount provides it from (the deepest mount wins, as in the
// container). ok is false when no bind mount covers the path.
func composeHostPath(s types.ServiceConfig, containerPath string) (host string, ok bool) {
	containerPath = path.Clean(containerPath)
	best := -1
	for _, v := range s.Volumes {
		if v.Type != types.VolumeTypeBind {
			continue
		}
		target := path.Clean(v.Target)
		if containerPath != target && !strings.HasPrefix(containerPath, strings.TrimSuffix(target, "/")+"/") {
			continue
		}
		if len(target) <= best {
			continue
		}
		best = len(target)
		host = filepath.Join(v.Source, filepath.FromSlash(strings.TrimPrefix(containerPath, target)))
	}
	return host, best >= 0
}

// composeInRepo fails unless host is an existing path inside the repository.
func composeInRepo(t *testing.T, what, host string) os.FileInfo {
	t.Helper()
	rel, err := filepath.Rel(composeRepoAbs(t), host)
	if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		t.Errorf("%s: host path %s: got outside the repository; want inside it", what, host)
		return nil
	}
	fi, err := os.Stat(host)
	if err != nil {
		t.Errorf("%s: host path %s: got %v; want it to exist", what, rel, err)
		return nil
	}
	return fi
}

func TestComposeServices(t *testing.T) {
	p := composeLoad(t)
	got := p.ServiceNames()
	slices.Sort(got)
	want := []string{composeGateway, composeSetup, composeWorker, "gatehouse-db", "postgresql", "temporal", "temporal-ui"}
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("services: got %v; want %v", got, want)
	}
}

func TestComposeGatehouseServicesRunTheRepoImage(t *testing.T) {
	p := composeLoad(t)
	repo := composeRepoAbs(t)
	var namespaces []string
	for _, name := range []string{composeSetup, composeWorker, composeGateway} {
		s := composeService(t, p, name)
		sub := strings.TrimPrefix(name, "gatehouse-")
		if s.Build == nil {
			t.Errorf("%s: build: got none; want the repository's Dockerfile", name)
		} else {
			if got, want := s.Build.Context, repo; got != want {
				t.Errorf("%s: build context: got %s; want %s", name, got, want)
			}
			if got, want := s.Build.Dockerfile, "Dockerfile"; got != want {
				t.Errorf("%s: build dockerfile: got %s; want %s", name, got, want)
			}
		}
		// The verb first; setup takes flags after it.
		if got := []string(s.Command); len(got) == 0 || got[0] != sub {
			t.Errorf("%s: command: got %q; want %q first", name, got, sub)
		}
		if len(s.Entrypoint) != 0 {
			t.Errorf("%s: entrypoint: got %q; want the image's", name, s.Entrypoint)
		}
		addr := composeEnv(t, s, "TEMPORAL_ADDRESS")
		if got, want := addr, "temporal:7233"; got != want {
			t.Errorf("%s: TEMPORAL_ADDRESS: got %s; want %s", name, got, want)
		}
		if host, _, err := net.SplitHostPort(addr); err == nil {
			if _, ok := p.Services[host]; !ok {
				t.Errorf("%s: TEMPORAL_ADDRESS host: got %s; want a service of the project", name, host)
			}
		}
		namespaces = append(namespaces, composeEnv(t, s, "TEMPORAL_NAMESPACE"))
	}
	if got := slices.Compact(slices.Clone(namespaces)); len(got) != 1 {
		t.Errorf("TEMPORAL_NAMESPACE of setup, worker, gateway: got %q; want one namespace", namespaces)
	}
}

func TestComposeWorkerAndGatewayShareThePlanStore(t *testing.T) {
	p := composeLoad(t)
	worker, gateway := composeService(t, p, composeWorker), composeService(t, p, composeGateway)
	dataDir := composeEnv(t, worker, "GATEHOUSE_DATA_DIR")
	if got := composeEnv(t, gateway, "GATEHOUSE_DATA_DIR"); got != dataDir {
		t.Errorf("GATEHOUSE_DATA_DIR: got gateway %s, worker %s; want the same", got, dataDir)
	}
	if !path.IsAbs(dataDir) {
		t.Errorf("GATEHOUSE_DATA_DIR: got %s; want an absolute path", dataDir)
	}
	volumeAt := func(s types.ServiceConfig) string {
		for _, v := range s.Volumes {
			if path.Clean(v.Target) != path.Clean(dataDir) {
				continue
			}
			if v.Type != types.VolumeTypeVolume {
				t.Errorf("%s: mount at %s: got type %s; want a named volume", s.Name, dataDir, v.Type)
			}
			if v.ReadOnly {
				t.Errorf("%s: mount at %s: got read-only; want writable", s.Name, dataDir)
			}
			return v.Source
		}
		t.Errorf("%s: mount at GATEHOUSE_DATA_DIR %s: got none; want the shared volume", s.Name, dataDir)
		return ""
	}
	wv, gv := volumeAt(worker), volumeAt(gateway)
	if wv == "" || gv == "" {
		return
	}
	if wv != gv {
		t.Errorf("volume at %s: got worker %s, gateway %s; want the same", dataDir, wv, gv)
	}
	if _, ok := p.Volumes[wv]; !ok {
		t.Errorf("volume %s: got undeclared; want a top-level named volume", wv)
	}
	// The example apply script writes its log; the rest of the container is
	// read-only for it.
	if v, ok := worker.Environment["APPLY_LOG"]; ok && v != nil {
		if !strings.HasPrefix(path.Clean(*v), path.Clean(dataDir)+"/") {
			t.Errorf("worker APPLY_LOG: got %s; want a path under %s", *v, dataDir)
		}
	}
}

func TestComposeConfigIsMountedAndItsApplyCommandsExist(t *testing.T) {
	p := composeLoad(t)
	worker, gateway := composeService(t, p, composeWorker), composeService(t, p, composeGateway)
	cfgPath := composeEnv(t, worker, "GATEHOUSE_CONFIG")
	if got := composeEnv(t, gateway, "GATEHOUSE_CONFIG"); got != cfgPath {
		t.Errorf("GATEHOUSE_CONFIG: got gateway %s, worker %s; want the same", got, cfgPath)
	}
	if !path.IsAbs(cfgPath) {
		t.Fatalf("GATEHOUSE_CONFIG: got %s; want an absolute path", cfgPath)
	}

	// Every bind mount's host side exists in the repository.
	for _, s := range []types.ServiceConfig{worker, gateway} {
		for _, v := range s.Volumes {
			if v.Type == types.VolumeTypeBind {
				composeInRepo(t, s.Name+" bind mount "+v.Target, v.Source)
			}
		}
	}

	var hostCfg string
	for _, s := range []types.ServiceConfig{worker, gateway} {
		host, ok := composeHostPath(s, cfgPath)
		if !ok {
			t.Fatalf("%s: GATEHOUSE_CONFIG %s: got no bind mount providing it; want one", s.Name, cfgPath)
		}
		if fi := composeInRepo(t, s.Name+" GATEHOUSE_CONFIG", host); fi != nil && !fi.Mode().IsRegular() {
			t.Errorf("%s: GATEHOUSE_CONFIG host path %s: got mode %s; want a regular file", s.Name, host, fi.Mode())
		}
		if hostCfg != "" && host != hostCfg {
			t.Errorf("config host path: got %s and %s; want the same file for worker and gateway", hostCfg, host)
		}
		hostCfg = host
	}
	if t.Failed() {
		return
	}

	if _, err := config.Load(hostCfg); err != nil {
		t.Fatalf("config.Load(%s): got %v; want nil", hostCfg, err)
	}
	// Parse keeps apply dirs as written, to resolve them as the container does:
	// against the config file's directory inside the container.
	data, err := os.ReadFile(hostCfg)
	if err != nil {
		t.Fatal(err)
	}
	// Parse reads policy files relative to the working directory: parse
	// from the config's directory, as the container's paths resolve.
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chdir(filepath.Dir(hostCfg)); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse(data)
	if cerr := os.Chdir(wd); cerr != nil {
		t.Fatal(cerr)
	}
	if err != nil {
		t.Fatalf("config.Parse(%s): got %v; want nil", hostCfg, err)
	}
	applies := 0
	for _, ws := range cfg.Workspaces {
		if ws.Apply == nil {
			continue
		}
		applies++
		dir := ws.Apply.Dir
		if !path.IsAbs(dir) {
			dir = path.Join(path.Dir(cfgPath), dir)
		}
		prog := ws.Apply.Command[0]
		if !strings.Contains(prog, "/") {
			t.Logf("workspace %s: apply command %q is looked up on PATH in the image; not checked", ws.Name, prog)
			continue
		}
		if !path.IsAbs(prog) {
			prog = path.Join(dir, prog)
		}
		host, ok := composeHostPath(worker, prog)
		if !ok {
			t.Errorf("workspace %s: apply command %s (in the container): got no bind mount providing it; want one", ws.Name, prog)
			continue
		}
		fi := composeInRepo(t, "workspace "+ws.Name+" apply command "+prog, host)
		if fi != nil && (!fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0) {
			t.Errorf("workspace %s: apply command %s: got mode %s; want an executable file", ws.Name, host, fi.Mode())
		}
	}
	if applies == 0 {
		t.Errorf("workspaces with an apply command: got 0; want at least 1 to check")
	}
}

func TestComposePublishedPorts(t *testing.T) {
	p := composeLoad(t)
	published := func(s types.ServiceConfig, port string) (uint32, bool) {
		for _, pc := range s.Ports {
			if pc.Published == port {
				return pc.Target, true
			}
		}
		return 0, false
	}

	gateway := composeService(t, p, composeGateway)
	target, ok := published(gateway, "8080")
	if !ok {
		t.Errorf("%s: published ports: got %+v; want 8080", composeGateway, gateway.Ports)
	}
	listen := composeEnv(t, gateway, "GATEHOUSE_HTTP_ADDR")
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		t.Errorf("%s: GATEHOUSE_HTTP_ADDR %q: %v", composeGateway, listen, err)
	} else {
		if host != "" && host != "0.0.0.0" && host != "::" {
			t.Errorf("%s: GATEHOUSE_HTTP_ADDR host: got %q; want all interfaces", composeGateway, host)
		}
		if port != "8080" {
			t.Errorf("%s: GATEHOUSE_HTTP_ADDR port: got %s; want 8080", composeGateway, port)
		}
	}
	if ok && target != 8080 {
		t.Errorf("%s: port 8080: got container port %d; want 8080, where the gateway listens", composeGateway, target)
	}

	ui := composeService(t, p, "temporal-ui")
	if target, ok := published(ui, "8233"); !ok {
		t.Errorf("temporal-ui: published ports: got %+v; want 8233", ui.Ports)
	} else if target != 8080 {
		t.Errorf("temporal-ui: port 8233: got container port %d; want 8080", target)
	}
}

func TestComposeStartupOrder(t *testing.T) {
	p := composeLoad(t)
	dependsOn := func(service, dep, condition string) {
		t.Helper()
		s := composeService(t, p, service)
		d, ok := s.DependsOn[dep]
		if !ok {
			t.Errorf("%s: depends_on %s: got none; want condition %s", service, dep, condition)
			return
		}
		if d.Condition != condition {
			t.Errorf("%s: depends_on %s: got condition %s; want %s", service, dep, d.Condition, condition)
		}
	}
	dependsOn(composeWorker, composeSetup, types.ServiceConditionCompletedSuccessfully)
	dependsOn(composeGateway, composeSetup, types.ServiceConditionCompletedSuccessfully)
	dependsOn(composeSetup, "temporal", types.ServiceConditionHealthy)
	dependsOn("temporal", "postgresql", types.ServiceConditionHealthy)
	dependsOn(composeWorker, "gatehouse-db", types.ServiceConditionHealthy)
	dependsOn(composeGateway, "gatehouse-db", types.ServiceConditionHealthy)

	// Waiting for "healthy" on a service without a healthcheck never ends.
	for _, s := range p.Services {
		for dep, d := range s.DependsOn {
			if d.Condition != types.ServiceConditionHealthy {
				continue
			}
			hc := p.Services[dep].HealthCheck
			if hc == nil || hc.Disable || len(hc.Test) == 0 {
				t.Errorf("%s: depends_on %s healthy: got no healthcheck on %s; want one", s.Name, dep, dep)
			}
		}
	}
	// A one-shot service others wait to complete must be allowed to stop.
	if r := composeService(t, p, composeSetup).Restart; r == "always" || r == "unless-stopped" {
		t.Errorf("%s: restart: got %s; want a policy that lets it exit", composeSetup, r)
	}
}

// composeInstruction is one Dockerfile instruction, continuation lines joined.
type composeInstruction struct {
	cmd  string // upper case
	args string
}

func composeParseDockerfile(t *testing.T) [][]composeInstruction {
	t.Helper()
	f, err := os.Open(composeDockerfile)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var stages [][]composeInstruction
	var cur strings.Builder
	flush := func() {
		line := strings.TrimSpace(cur.String())
		cur.Reset()
		if line == "" {
			return
		}
		cmd, args, _ := strings.Cut(line, " ")
		in := composeInstruction{cmd: strings.ToUpper(cmd), args: strings.TrimSpace(args)}
		if in.cmd == "FROM" {
			stages = append(stages, nil)
		}
		if len(stages) == 0 {
			t.Fatalf("Dockerfile: %s before the first FROM", in.cmd)
		}
		stages[len(stages)-1] = append(stages[len(stages)-1], in)
	}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "#") { // comments, also inside continuations
			continue
		}
		if rest, ok := strings.CutSuffix(line, `\`); ok {
			cur.WriteString(rest + " ")
			continue
		}
		cur.WriteString(line)
		flush()
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	flush()
	return stages
}

func TestDockerfile(t *testing.T) {
	stages := composeParseDockerfile(t)
	if len(stages) < 2 {
		t.Fatalf("Dockerfile stages: got %d; want a build stage and a runtime stage", len(stages))
	}
	final := stages[len(stages)-1]
	builderName := ""
	for _, in := range final {
		if in.cmd == "COPY" && strings.Contains(in.args, "--from=") && strings.HasSuffix(in.args, " /usr/local/bin/gatehouse") {
			builderName = strings.Fields(strings.SplitN(in.args, "--from=", 2)[1])[0]
		}
	}
	if builderName == "" {
		t.Fatalf("final stage: got no COPY --from=... /usr/local/bin/gatehouse; want the built binary copied there")
	}
	var build []composeInstruction
	for _, st := range stages[:len(stages)-1] {
		if f := strings.Fields(st[0].args); len(f) == 3 && strings.EqualFold(f[1], "AS") && f[2] == builderName {
			build = st
		}
	}
	if build == nil {
		t.Fatalf("build stage %q: got none; want the stage the binary is copied from", builderName)
	}

	// The builder's Go is the one go.mod asks for (GOTOOLCHAIN=local would
	// otherwise fail the build).
	gomod, err := os.ReadFile(filepath.Join(composeRepoRoot, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	goVersion := ""
	for _, l := range strings.Split(string(gomod), "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(l), "go "); ok {
			goVersion = strings.TrimSpace(v)
		}
	}
	if img := strings.Fields(build[0].args)[0]; !strings.HasPrefix(img, "golang:"+goVersion+"-") && img != "golang:"+goVersion {
		t.Errorf("build stage image: got %s; want golang:%s (go.mod's go directive)", img, goVersion)
	}

	download, copySource, buildAt := -1, -1, -1
	for i, in := range build {
		switch {
		case in.cmd == "RUN" && strings.Contains(in.args, "go mod download") && download < 0:
			download = i
		case in.cmd == "COPY" && (in.args == ". ." || strings.HasPrefix(in.args, ". ")) && copySource < 0:
			copySource = i
		case in.cmd == "RUN" && strings.Contains(in.args, "go build"):
			buildAt = i
			for _, want := range []string{"CGO_ENABLED=0", "-trimpath", "-o /gatehouse", "./cmd/gatehouse"} {
				if !strings.Contains(in.args, want) {
					t.Errorf("build stage go build: got %q; want it to contain %q", in.args, want)
				}
			}
		}
	}
	if download < 0 || copySource < 0 || buildAt < 0 || !(download < copySource && copySource < buildAt) {
		t.Errorf("build stage order: got go mod download at %d, COPY . at %d, go build at %d; want them all, in that order", download, copySource, buildAt)
	}

	// Runtime stage: a shell for the apply script, the examples, a non-root
	// user, and gatehouse as the entrypoint.
	base := strings.Fields(final[0].args)[0]
	if base == "scratch" || strings.Contains(base, "distroless") {
		t.Errorf("runtime image: got %s; want one with /bin/sh for apply scripts", base)
	}
	script, err := os.ReadFile(filepath.Join(composeRepoRoot, "examples", "apply.sh"))
	if err != nil {
		t.Fatal(err)
	}
	if got, _, _ := strings.Cut(string(script), "\n"); got != "#!/bin/sh" {
		t.Errorf("examples/apply.sh interpreter: got %q; want #!/bin/sh, which the runtime image provides", got)
	}
	var user, entrypoint string
	copiesExamples := false
	for _, in := range final {
		switch in.cmd {
		case "USER":
			user = in.args
		case "ENTRYPOINT":
			entrypoint = in.args
		case "COPY":
			if f := strings.Fields(in.args); len(f) == 2 && path.Clean(f[0]) == "examples" && path.Clean(f[1]) == "/etc/gatehouse/examples" {
				copiesExamples = true
			}
		}
	}
	name, _, _ := strings.Cut(user, ":")
	if name == "" || name == "root" || name == "0" {
		t.Errorf("runtime stage USER: got %q; want a non-root user", user)
	}
	var ep []string
	if err := json.Unmarshal([]byte(entrypoint), &ep); err != nil || !slices.Equal(ep, []string{"gatehouse"}) {
		t.Errorf(`runtime stage ENTRYPOINT: got %s; want ["gatehouse"]`, entrypoint)
	}
	if !copiesExamples {
		t.Errorf("runtime stage: got no COPY examples/ /etc/gatehouse/examples/; want the examples in the image")
	}
}

// TestComposeKeepsTheAuditTrailAndSetsRetention: worker and gateway share the
// audit trail's PostgreSQL (its own service, its own volume), and both
// Temporal's auto-setup and gatehouse setup set the namespace's retention
// to what README states.
func TestComposeKeepsTheAuditTrailAndSetsRetention(t *testing.T) {
	p := composeLoad(t)
	worker, gateway := composeService(t, p, composeWorker), composeService(t, p, composeGateway)
	dsn := composeEnv(t, worker, app.DatabaseEnv)
	if got := composeEnv(t, gateway, app.DatabaseEnv); got != dsn {
		t.Errorf("%s: got gateway %s, worker %s; want the same", app.DatabaseEnv, got, dsn)
	}
	u, err := url.Parse(dsn)
	if err != nil || u.Scheme != "postgres" {
		t.Fatalf("%s %q: want a postgres:// URL", app.DatabaseEnv, dsn)
	}
	db := composeService(t, p, u.Hostname())
	if !strings.HasPrefix(db.Image, "postgres:") || composeEnv(t, db, "POSTGRES_DB") != strings.TrimPrefix(u.Path, "/") ||
		composeEnv(t, db, "POSTGRES_USER") != u.User.Username() {
		t.Errorf("%s: image %s, db %s, user %s; want PostgreSQL with the database and user of %s", db.Name, db.Image,
			composeEnv(t, db, "POSTGRES_DB"), composeEnv(t, db, "POSTGRES_USER"), dsn)
	}
	if pw, _ := u.User.Password(); pw != composeEnv(t, db, "POSTGRES_PASSWORD") {
		t.Errorf("the audit database's password differs between %s and %s", app.DatabaseEnv, db.Name)
	}
	named := false
	for _, v := range db.Volumes {
		named = named || (v.Type == types.VolumeTypeVolume && v.Target == "/var/lib/postgresql/data")
	}
	if !named {
		t.Errorf("%s: want its data in a named volume", db.Name)
	}
	if got := composeEnv(t, composeService(t, p, "temporal"), "DEFAULT_NAMESPACE_RETENTION"); got != "720h" {
		t.Errorf("temporal DEFAULT_NAMESPACE_RETENTION %s; want 720h", got)
	}
	if got := []string(composeService(t, p, composeSetup).Command); !slices.Equal(got, []string{"setup", "--retention", "720h"}) {
		t.Errorf("%s: command %q; want setup --retention 720h", composeSetup, got)
	}
}
