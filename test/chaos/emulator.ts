import { startFauxqs } from 'fauxqs';

// The chaos run's S3/SQS endpoint, in a process of its own so killing the pipeline does not kill the
// queues (as on AWS, where a Lambda dies and SQS does not); its state is in SQLite under argv[2].
const server = await startFauxqs({
  port: Number(process.argv[3] ?? 0),
  logger: false,
  dataDir: process.argv[2],
});
process.stdout.write(`${server.address}\n`);
