// Runs a command on a real pseudo-terminal (Python's pty module), for what a
// program only does on a terminal: colours, progress lines, the apply prompt.
// `answers` are typed, one per prompt, once a `[y/N]` question shows.
import { spawn } from 'node:child_process';

const DRIVER = String.raw`
import json, os, pty, select, sys
argv, env, answers = json.loads(sys.argv[1])
pid, fd = pty.fork()
if pid == 0:
    os.execvpe(argv[0], argv, env)
out = b''
asked = 0
while True:
    try:
        ready, _, _ = select.select([fd], [], [], 60)
    except InterruptedError:
        continue
    if not ready:
        break
    try:
        chunk = os.read(fd, 65536)
    except OSError:
        break
    if not chunk:
        break
    out += chunk
    if answers and b'[y/N]' in out[asked:]:
        asked = len(out)
        os.write(fd, (answers.pop(0) + '\n').encode())
# 60 s of silence: the program waits for something that will not come; stop it rather than hang.
done, status = os.waitpid(pid, os.WNOHANG)
if done == 0:
    os.kill(pid, 9)
    _, status = os.waitpid(pid, 0)
sys.stdout.buffer.write(out)
sys.exit(os.waitstatus_to_exitcode(status))
`;

/** `{code, output}`: stdout and stderr together, as the terminal showed them (CRLF line ends). */
export function runInPty(argv, { env = process.env, answers = [] } = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn('python3', ['-c', DRIVER, JSON.stringify([argv, env, answers])], { stdio: ['ignore', 'pipe', 'inherit'] });
    let output = '';
    child.stdout.on('data', (d) => (output += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, output }));
  });
}
