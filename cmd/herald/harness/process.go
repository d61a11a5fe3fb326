package harness

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Process is a long-running child process: `herald serve` (see
// Instance.Serve) or a server Herald is compared with. Its output goes to
// a log file, and the messages of the lines it writes to standard error
// are kept in order, so that a test can wait for one. It is killed if the
// test process dies, and stopped when the test ends.
type Process struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	stopMsg string // what the program logs on a clean stop, if anything
	done    chan struct{}
	err     error // from Wait, once done is closed

	mu      sync.Mutex
	msgs    []string
	changed chan struct{} // closed and replaced when a message arrives
}

// Start runs a program in the background with its output going to
// logPath.
func Start(tb testing.TB, logPath, name string, args ...string) *Process {
	tb.Helper()
	return start(tb, exec.Command(name, args...), logPath, "")
}

func start(tb testing.TB, cmd *exec.Cmd, logPath, stopMsg string) *Process {
	tb.Helper()
	f, err := os.Create(logPath)
	if err != nil {
		tb.Fatal(err)
	}
	cmd.Stdout = f
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	pipe, err := cmd.StderrPipe()
	if err != nil {
		f.Close()
		tb.Fatal(err)
	}
	p := &Process{name: filepath.Base(cmd.Path), cmd: cmd, logPath: logPath, stopMsg: stopMsg,
		done: make(chan struct{}), changed: make(chan struct{})}
	if err := cmd.Start(); err != nil {
		f.Close()
		tb.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(pipe)
		sc.Buffer(make([]byte, 64<<10), 4<<20)
		for sc.Scan() {
			line := sc.Bytes()
			f.Write(line)
			f.Write([]byte{'\n'})
			p.record(line)
		}
		io.Copy(io.Discard, pipe)
		p.err = cmd.Wait()
		f.Close()
		close(p.done)
	}()
	tb.Cleanup(p.end)
	return p
}

// record keeps the message of a log line: the msg of a JSON line (what
// Herald writes with log.format json), otherwise the whole line.
func (p *Process) record(line []byte) {
	var rec struct {
		Msg *string `json:"msg"`
	}
	msg := string(line)
	if json.Unmarshal(line, &rec) == nil && rec.Msg != nil {
		msg = *rec.Msg
	}
	p.mu.Lock()
	p.msgs = append(p.msgs, msg)
	close(p.changed)
	p.changed = make(chan struct{})
	p.mu.Unlock()
}

// LogFile is the path of the process's log.
func (p *Process) LogFile() string { return p.logPath }

// Exited reports whether the process has ended.
func (p *Process) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Check returns nil while the process runs, and once it has ended an
// error with its exit status and the end of its log.
func (p *Process) Check() error {
	if !p.Exited() {
		return nil
	}
	b, _ := os.ReadFile(p.logPath)
	return fmt.Errorf("%s exited (%v); log %s:\n%s", p.name, p.err, p.logPath, Tail(string(b), 3000))
}

// WaitLog waits for a log message containing substr and reports whether
// it came before timeout and before the process ended.
func (p *Process) WaitLog(substr string, timeout time.Duration) bool {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		p.mu.Lock()
		found := slices.ContainsFunc(p.msgs, func(m string) bool { return strings.Contains(m, substr) })
		ch := p.changed
		p.mu.Unlock()
		if found {
			return true
		}
		select {
		case <-ch:
		case <-p.done:
			return false
		case <-deadline.C:
			return false
		}
	}
}

// WaitHTTP waits until url answers 200, and fails the test if the process
// ends first or timeout passes.
func (p *Process) WaitHTTP(tb testing.TB, url string, timeout time.Duration) {
	tb.Helper()
	client := &http.Client{Timeout: time.Minute}
	deadline := time.Now().Add(timeout)
	for {
		resp, err := client.Get(url)
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if err := p.Check(); err != nil {
			tb.Fatal(err)
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(p.logPath)
			tb.Fatalf("%s did not answer 200 within %v (last error %v); log %s:\n%s", url, timeout, err, p.logPath, Tail(string(b), 3000))
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// Kill ends the process with SIGKILL, as a power cut or the OOM killer
// would: no shutdown code runs.
func (p *Process) Kill() {
	if p.Exited() {
		return
	}
	p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// Stop asks for a clean shutdown (SIGTERM). It fails the test if the
// process had already ended or takes more than 20 seconds, and, for
// `herald serve`, if it does not log that it stopped.
func (p *Process) Stop(tb testing.TB) {
	tb.Helper()
	if err := p.Check(); err != nil {
		tb.Fatalf("stopping: %v", err)
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(20 * time.Second):
		p.Kill()
		tb.Fatalf("%s did not stop within 20s of SIGTERM", p.name)
	}
	if p.stopMsg != "" && !p.WaitLog(p.stopMsg, time.Second) {
		tb.Errorf("%s did not log a clean stop (%q)", p.name, p.stopMsg)
	}
}

// end stops whatever is still running when the test ends: SIGTERM, so
// that a server with children (nginx) takes them along, then SIGKILL
// after ten seconds.
func (p *Process) end() {
	if p.Exited() {
		return
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		p.Kill()
	}
}

// PeakRSS is the process's peak resident memory so far, in bytes (VmHWM
// in /proc); 0 once it has ended or when it cannot be read.
func (p *Process) PeakRSS() int64 { return peakRSS(p.cmd.Process.Pid) }

// CPUTime is the CPU time the process has used so far, in user and
// system mode (utime and stime in /proc, counted in clock ticks of 10 ms);
// 0 once it has ended or when it cannot be read.
func (p *Process) CPUTime() time.Duration { return cpuTime(p.cmd.Process.Pid) }

func cpuTime(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// The fields after the command name, which is in parentheses and may
	// hold spaces: state is the first, utime the 12th and stime the 13th.
	_, rest, ok := strings.Cut(string(b), ") ")
	f := strings.Fields(rest)
	if !ok || len(f) < 13 {
		return 0
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0
	}
	const tick = 10 * time.Millisecond // USER_HZ is 100 on Linux
	return time.Duration(utime+stime) * tick
}

// peakRSS is the peak resident memory of the running process pid, in
// bytes: VmHWM in /proc, which counts the process's own address space
// from its exec on. (getrusage's maxrss does not do for a child of a Go
// program: the child starts in its parent's address space, and Linux
// keeps that space's peak as the child's.) It is 0 once the process has
// ended or when it cannot be read.
func peakRSS(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}
