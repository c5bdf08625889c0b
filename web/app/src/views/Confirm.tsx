import { useEffect, useRef, type ReactNode } from "react";

/**
 * A modal question before something that cannot be undone (a refund): the browser's own
 * `<dialog>`, so focus is trapped inside, Escape cancels, and focus returns to the button that
 * opened it. The safe answer has focus first.
 */
export function Confirm(props: {
  title: string;
  children: ReactNode;
  confirm: string;
  cancel: string;
  onConfirm: () => void;
  onCancel: () => void;
}) {
  const dialog = useRef<HTMLDialogElement>(null);
  useEffect(() => {
    const d = dialog.current;
    if (d && !d.open) d.showModal();
    return () => d?.close();
  }, []);
  // Closed while still in the page, so the browser returns focus to the button that opened it
  // (a cleanup after React removed the element would leave focus on <body>).
  const answer = (then: () => void) => () => {
    dialog.current?.close();
    then();
  };
  return (
    <dialog
      ref={dialog}
      className="confirm"
      aria-labelledby="confirm-title"
      onCancel={(e) => {
        e.preventDefault();
        answer(props.onCancel)();
      }}
    >
      <h2 id="confirm-title">{props.title}</h2>
      <div>{props.children}</div>
      <div className="inline">
        <button type="button" autoFocus className="secondary" onClick={answer(props.onCancel)}>
          {props.cancel}
        </button>
        <button type="button" onClick={answer(props.onConfirm)}>
          {props.confirm}
        </button>
      </div>
    </dialog>
  );
}
