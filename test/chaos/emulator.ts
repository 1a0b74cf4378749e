import { startEmbeddedEmulator } from '../../local/embedded-emulator.ts';

// The chaos run's S3/SQS endpoint (loopback only), in a process of its own so killing the pipeline does
// not kill the queues (as on AWS, where a Lambda dies and SQS does not); its state is kept under argv[2].
const emulator = await startEmbeddedEmulator({
  port: Number(process.argv[3] ?? 0),
  stateDir: process.argv[2],
});
process.stdout.write(`${emulator.endpoint}\n`);
