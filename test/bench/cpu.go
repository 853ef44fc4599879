package main

import (
	"os"
	"slices"
	"strconv"
	"strings"
)

// clockTicks is the unit of utime and stime in /proc/<pid>/stat (USER_HZ, 100 on Linux).
const clockTicks = 100

// benchProcess names this program in CPU accounts.
const benchProcess = "bench (clients)"

// cpuAccount is CPU seconds (user + system) used by each process of the stack and by the
// benchmark itself: on a machine with few cores, throughput is bounded by CPU, so where the CPU
// goes says what limits a figure.
type cpuAccount map[string]float64

// takeCPU reads the CPU time used so far by each running process of the stack and by this
// program.
func (s *system) takeCPU() cpuAccount {
	out := cpuAccount{}
	for _, p := range s.stack.Processes() {
		if p == nil {
			continue
		}
		if secs, ok := cpuSeconds(p.Pid()); ok {
			out[p.Name()] = secs
		}
	}
	if secs, ok := cpuSeconds(os.Getpid()); ok {
		out[benchProcess] = secs
	}
	return out
}

// since is the CPU used between an earlier account and this one, per process. A process that
// restarted in between counts from zero.
func (a cpuAccount) since(earlier cpuAccount) cpuAccount {
	out := cpuAccount{}
	for name, now := range a {
		d := now - earlier[name]
		if d < 0 {
			d = now
		}
		out[name] = d
	}
	return out
}

// plus adds two accounts.
func (a cpuAccount) plus(o cpuAccount) cpuAccount {
	out := cpuAccount{}
	for name, v := range a {
		out[name] += v
	}
	for name, v := range o {
		out[name] += v
	}
	return out
}

// total is the CPU of every process together.
func (a cpuAccount) total() float64 {
	sum := 0.0
	for _, v := range a {
		sum += v
	}
	return sum
}

// reportCPU records the CPU per item: all processes together, then each process that used a
// noticeable share, largest first.
func (r *Report) reportCPU(scenario, what string, a cpuAccount, items int) {
	if items == 0 {
		return
	}
	r.add(scenario, "CPU per "+what, 1000*a.total()/float64(items), "ms", "user + system, every process of the stack and the clients")
	for _, name := range a.largestFirst() {
		if perItem := 1000 * a[name] / float64(items); perItem >= 0.05 {
			r.add(scenario, "  of which "+name, perItem, "ms", "")
		}
	}
}

// largestFirst are the processes by decreasing CPU.
func (a cpuAccount) largestFirst() []string {
	names := make([]string, 0, len(a))
	for name := range a {
		names = append(names, name)
	}
	slices.SortFunc(names, func(x, y string) int {
		switch {
		case a[x] > a[y]:
			return -1
		case a[x] < a[y]:
			return 1
		}
		return strings.Compare(x, y)
	})
	return names
}

// cpuSeconds is the user and system CPU time of a process from /proc/<pid>/stat.
func cpuSeconds(pid int) (float64, bool) {
	if pid == 0 {
		return 0, false
	}
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, false
	}
	// The command name (field 2) is in parentheses and may hold spaces: count fields after it.
	end := strings.LastIndexByte(string(data), ')')
	if end < 0 {
		return 0, false
	}
	fields := strings.Fields(string(data)[end+1:])
	// After the name: state is field 3, utime field 14 and stime field 15 of the whole line.
	const utimeAfterName, stimeAfterName = 14 - 3, 15 - 3
	if len(fields) <= stimeAfterName {
		return 0, false
	}
	utime, err1 := strconv.ParseFloat(fields[utimeAfterName], 64)
	stime, err2 := strconv.ParseFloat(fields[stimeAfterName], 64)
	if err1 != nil || err2 != nil {
		return 0, false
	}
	return (utime + stime) / clockTicks, true
}
