import { createParser } from 'eventsource-parser'

/** Reads a text/event-stream answer as it arrives, handing each event's data to `onData`. */
export async function readEvents(res: Response, onData: (data: string) => void): Promise<void> {
  if (!res.body) return
  const parser = createParser({ onEvent: (event) => onData(event.data) })
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader()
  try {
    for (;;) {
      const { done, value } = await reader.read()
      if (done) return
      parser.feed(value)
    }
  } catch (err) {
    // onData threw (an error event): the rest of the stream is not wanted.
    await reader.cancel().catch(() => undefined)
    throw err
  }
}
